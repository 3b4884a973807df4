//go:build !amd64 || purego

package vec

const (
	useAVX512BW   = false
	useAVX512VNNI = false
)

func dotUint8Int8AVX512(a []uint8, b []int8) int32           { panic(noAssembly) }
func dotUint8Int8AVX2(a []uint8, b []int8) int32             { panic(noAssembly) }
func dotFloatUint8AVX512(a []float32, c []uint8) float32     { panic(noAssembly) }
func dotFloatUint8AVX2(a []float32, c []uint8) float32       { panic(noAssembly) }
func lookupSumAVX512(table []float32, codes []uint8) float32 { panic(noAssembly) }
func lookupSumAVX2(table []float32, codes []uint8) float32   { panic(noAssembly) }
