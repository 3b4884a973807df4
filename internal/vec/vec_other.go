//go:build !amd64 || purego

package vec

// Without assembly the flags are constants, so the compiler drops the
// branches to the kernels below, which exist only to let the dispatch in
// vec.go compile, and they are never called.
const (
	useAVX512  = false
	useAVX2FMA = false
)

func l2SquaredAVX2(a, b []float32) float32        { panic(noAssembly) }
func dotAVX2(a, b []float32) float32              { panic(noAssembly) }
func scaleAVX2(v []float32, f float32)            { panic(noAssembly) }
func l2SquaredAVX512(a, b []float32) float32      { panic(noAssembly) }
func dotAVX512(a, b []float32) float32            { panic(noAssembly) }
func scaleAVX512(v []float32, f float32)          { panic(noAssembly) }
func addScaledAVX2(dst, x []float32, a float32)   { panic(noAssembly) }
func addScaledAVX512(dst, x []float32, a float32) { panic(noAssembly) }
func argMinAVX2(s []float32) int                  { panic(noAssembly) }
func argMinAVX512(s []float32) int                { panic(noAssembly) }

const noAssembly = "vec: assembly kernel called in a build without assembly"
