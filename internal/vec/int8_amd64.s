//go:build amd64 && !purego

#include "textflag.h"

// 8-bit kernels for amd64 (see int8.go). Register use as in vec_amd64.s: SI
// walks the first slice, DI the second, CX counts the elements left; four
// accumulators hide the latency of VPDPBUSD, VPADDD and FMA.
//
// The AVX-512 kernels finish with a masked tail, so they take any length.
// The AVX2 kernels take only whole blocks (16 bytes for the integer kernel,
// 8 for the float one): AVX2 has no byte-masked load, and the Go wrappers
// finish the last few elements.

// REDUCE_INT_Z0 sums the sixteen int32 lanes of Z0 into the low lane of X0,
// clobbering X1.
#define REDUCE_INT_Z0 \
	VEXTRACTI64X4 $1, Z0, Y1 \
	; VPADDD      Y1, Y0, Y0 \
	; REDUCE_INT_Y0

// REDUCE_INT_Y0 sums the eight int32 lanes of Y0 into the low lane of X0,
// clobbering X1.
#define REDUCE_INT_Y0 \
	VEXTRACTI128 $1, Y0, X1 \
	; VPADDD     X1, X0, X0 \
	; VPSHUFD    $0x4e, X0, X1 \
	; VPADDD     X1, X0, X0 \
	; VPSHUFD    $0xb1, X0, X1 \
	; VPADDD     X1, X0, X0

// REDUCE_FLOAT_Y0 sums the eight float32 lanes of Y0 into the low lane of
// X0, clobbering X1 (as REDUCE_Y0 in vec_amd64.s).
#define REDUCE_FLOAT_Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	; VADDPS     X1, X0, X0 \
	; VMOVHLPS   X0, X0, X1 \
	; VADDPS     X1, X0, X0 \
	; VMOVSHDUP  X0, X1     \
	; VADDSS     X1, X0, X0

// func dotUint8Int8AVX512(a []uint8, b []int8) int32
// Requires AVX512F, BW, VL and VNNI. VPDPBUSD multiplies 64 unsigned bytes
// of its second operand by the 64 signed bytes of its first, adds each
// group of four products and accumulates the sixteen sums into int32 lanes.
TEXT ·dotUint8Int8AVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $256
	JB     blocks

loop256:
	VMOVDQU8 (SI), Z4
	VMOVDQU8 64(SI), Z5
	VMOVDQU8 128(SI), Z6
	VMOVDQU8 192(SI), Z7
	VPDPBUSD (DI), Z4, Z0
	VPDPBUSD 64(DI), Z5, Z1
	VPDPBUSD 128(DI), Z6, Z2
	VPDPBUSD 192(DI), Z7, Z3
	ADDQ     $256, SI
	ADDQ     $256, DI
	SUBQ     $256, CX
	CMPQ     CX, $256
	JAE      loop256

blocks:
	CMPQ CX, $64
	JB   tail

loop64:
	VMOVDQU8 (SI), Z4
	VPDPBUSD (DI), Z4, Z0
	ADDQ     $64, SI
	ADDQ     $64, DI
	SUBQ     $64, CX
	CMPQ     CX, $64
	JAE      loop64

tail:
	TESTQ      CX, CX
	JZ         reduce
	MOVQ       $1, AX
	SHLQ       CX, AX
	DECQ       AX                // AX = 1<<CX - 1: the low CX bytes
	KMOVQ      AX, K1
	VMOVDQU8.Z (SI), K1, Z4
	VMOVDQU8.Z (DI), K1, Z5
	VPDPBUSD   Z5, Z4, Z1

reduce:
	VPADDD Z1, Z0, Z0
	VPADDD Z3, Z2, Z2
	VPADDD Z2, Z0, Z0
	REDUCE_INT_Z0
	VMOVD  X0, AX
	MOVL   AX, ret+48(FP)
	VZEROUPPER
	RET

// func dotUint8Int8AVX2(a []uint8, b []int8) int32
// Requires AVX2; len(a) must be a multiple of 16. The bytes are widened to
// 16-bit words (zero- and sign-extended) and VPMADDWD multiplies them and
// adds pairs into int32 lanes. VPMADDUBSW, which works on bytes directly,
// is not used: its 16-bit pair sums saturate (255·127·2 > 32767).
TEXT ·dotUint8Int8AVX2(SB), NOSPLIT, $0-52
	MOVQ  a_base+0(FP), SI
	MOVQ  a_len+8(FP), CX
	MOVQ  b_base+24(FP), DI
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	CMPQ  CX, $64
	JB    blocks

loop64:
	VPMOVZXBW (SI), Y4
	VPMOVZXBW 16(SI), Y5
	VPMOVZXBW 32(SI), Y6
	VPMOVZXBW 48(SI), Y7
	VPMOVSXBW (DI), Y8
	VPMOVSXBW 16(DI), Y9
	VPMOVSXBW 32(DI), Y10
	VPMOVSXBW 48(DI), Y11
	VPMADDWD  Y8, Y4, Y4
	VPMADDWD  Y9, Y5, Y5
	VPMADDWD  Y10, Y6, Y6
	VPMADDWD  Y11, Y7, Y7
	VPADDD    Y4, Y0, Y0
	VPADDD    Y5, Y1, Y1
	VPADDD    Y6, Y2, Y2
	VPADDD    Y7, Y3, Y3
	ADDQ      $64, SI
	ADDQ      $64, DI
	SUBQ      $64, CX
	CMPQ      CX, $64
	JAE       loop64

blocks:
	TESTQ CX, CX
	JZ    reduce

loop16:
	VPMOVZXBW (SI), Y4
	VPMOVSXBW (DI), Y8
	VPMADDWD  Y8, Y4, Y4
	VPADDD    Y4, Y0, Y0
	ADDQ      $16, SI
	ADDQ      $16, DI
	SUBQ      $16, CX
	JNZ       loop16

reduce:
	VPADDD Y1, Y0, Y0
	VPADDD Y3, Y2, Y2
	VPADDD Y2, Y0, Y0
	REDUCE_INT_Y0
	VMOVD  X0, AX
	MOVL   AX, ret+48(FP)
	VZEROUPPER
	RET

// func dotFloatUint8AVX512(a []float32, c []uint8) float32
// Requires AVX512F, BW and VL. Sixteen codes at a time are zero-extended to
// int32 lanes, converted to float32 (exactly: they are below 2²⁴) and
// multiplied into the sums with a's elements.
TEXT ·dotFloatUint8AVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   c_base+24(FP), DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $64
	JB     blocks

loop64:
	VPMOVZXBD   (DI), Z4
	VPMOVZXBD   16(DI), Z5
	VPMOVZXBD   32(DI), Z6
	VPMOVZXBD   48(DI), Z7
	VCVTDQ2PS   Z4, Z4
	VCVTDQ2PS   Z5, Z5
	VCVTDQ2PS   Z6, Z6
	VCVTDQ2PS   Z7, Z7
	VFMADD231PS (SI), Z4, Z0
	VFMADD231PS 64(SI), Z5, Z1
	VFMADD231PS 128(SI), Z6, Z2
	VFMADD231PS 192(SI), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $64, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JAE         loop64

blocks:
	CMPQ CX, $16
	JB   tail

loop16:
	VPMOVZXBD   (DI), Z4
	VCVTDQ2PS   Z4, Z4
	VFMADD231PS (SI), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $16, DI
	SUBQ        $16, CX
	CMPQ        CX, $16
	JAE         loop16

tail:
	TESTQ       CX, CX
	JZ          reduce
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX                 // AX = 1<<CX - 1: the low CX lanes
	KMOVW       AX, K1
	VMOVDQU8.Z  (DI), K1, X4
	VPMOVZXBD   X4, Z4
	VCVTDQ2PS   Z4, Z4
	VMOVUPS.Z   (SI), K1, Z5
	VFMADD231PS Z5, Z4, Z1

reduce:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	REDUCE_FLOAT_Y0
	VMOVSS        X0, ret+48(FP)
	VZEROUPPER
	RET

// func dotFloatUint8AVX2(a []float32, c []uint8) float32
// Requires AVX2 and FMA; len(a) must be a multiple of 8.
TEXT ·dotFloatUint8AVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   c_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     blocks

loop32:
	VPMOVZXBD   (DI), Y4
	VPMOVZXBD   8(DI), Y5
	VPMOVZXBD   16(DI), Y6
	VPMOVZXBD   24(DI), Y7
	VCVTDQ2PS   Y4, Y4
	VCVTDQ2PS   Y5, Y5
	VCVTDQ2PS   Y6, Y6
	VCVTDQ2PS   Y7, Y7
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	VFMADD231PS 96(SI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $32, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         loop32

blocks:
	TESTQ CX, CX
	JZ    reduce

loop8:
	VPMOVZXBD   (DI), Y4
	VCVTDQ2PS   Y4, Y4
	VFMADD231PS (SI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $8, DI
	SUBQ        $8, CX
	JNZ         loop8

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	REDUCE_FLOAT_Y0
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// laneOffsets holds 256·i for lanes i = 0…15: the offsets of 16 consecutive
// table rows.
DATA laneOffsets<>+0x00(SB)/4, $0
DATA laneOffsets<>+0x04(SB)/4, $256
DATA laneOffsets<>+0x08(SB)/4, $512
DATA laneOffsets<>+0x0c(SB)/4, $768
DATA laneOffsets<>+0x10(SB)/4, $1024
DATA laneOffsets<>+0x14(SB)/4, $1280
DATA laneOffsets<>+0x18(SB)/4, $1536
DATA laneOffsets<>+0x1c(SB)/4, $1792
DATA laneOffsets<>+0x20(SB)/4, $2048
DATA laneOffsets<>+0x24(SB)/4, $2304
DATA laneOffsets<>+0x28(SB)/4, $2560
DATA laneOffsets<>+0x2c(SB)/4, $2816
DATA laneOffsets<>+0x30(SB)/4, $3072
DATA laneOffsets<>+0x34(SB)/4, $3328
DATA laneOffsets<>+0x38(SB)/4, $3584
DATA laneOffsets<>+0x3c(SB)/4, $3840
GLOBL laneOffsets<>(SB), RODATA|NOPTR, $64

// func lookupSumAVX512(table []float32, codes []uint8) float32
// Requires AVX512F, BW and VL. Per 16 codes: zero-extend them to dwords, add
// the rows' offsets (Z2, advanced by 16 rows per block) and gather the 16
// table entries. A gather clears its mask as it completes, so the mask is
// set again before each. Two accumulators let consecutive gathers overlap.
TEXT ·lookupSumAVX512(SB), NOSPLIT, $0-52
	MOVQ         table_base+0(FP), SI
	MOVQ         codes_base+24(FP), DI
	MOVQ         codes_len+32(FP), CX
	VPXORD       Z0, Z0, Z0
	VPXORD       Z1, Z1, Z1
	VMOVDQU32    laneOffsets<>(SB), Z2
	MOVL         $4096, AX
	VPBROADCASTD AX, Z3
	CMPQ         CX, $32
	JB           blocks

loop32:
	VPMOVZXBD  (DI), Z4
	VPMOVZXBD  16(DI), Z6
	VPADDD     Z2, Z4, Z4
	VPADDD     Z3, Z2, Z2
	VPADDD     Z2, Z6, Z6
	VPADDD     Z3, Z2, Z2
	KXNORW     K1, K1, K1
	KXNORW     K2, K2, K2
	VGATHERDPS (SI)(Z4*4), K1, Z5
	VGATHERDPS (SI)(Z6*4), K2, Z7
	VADDPS     Z5, Z0, Z0
	VADDPS     Z7, Z1, Z1
	ADDQ       $32, DI
	SUBQ       $32, CX
	CMPQ       CX, $32
	JAE        loop32

blocks:
	CMPQ CX, $16
	JB   tail
	VPMOVZXBD  (DI), Z4
	VPADDD     Z2, Z4, Z4
	VPADDD     Z3, Z2, Z2
	KXNORW     K1, K1, K1
	VGATHERDPS (SI)(Z4*4), K1, Z5
	VADDPS     Z5, Z0, Z0
	ADDQ       $16, DI
	SUBQ       $16, CX

tail:
	TESTQ      CX, CX
	JZ         reduce
	MOVL       $1, AX
	SHLL       CX, AX
	DECL       AX                 // AX = 1<<CX - 1: the low CX lanes
	KMOVW      AX, K1
	VMOVDQU8.Z (DI), K1, X4
	VPMOVZXBD  X4, Z4
	VPADDD     Z2, Z4, Z4
	VPXORD     Z5, Z5, Z5         // lanes the masked gather skips stay zero
	VGATHERDPS (SI)(Z4*4), K1, Z5
	VADDPS     Z5, Z1, Z1

reduce:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	REDUCE_FLOAT_Y0
	VMOVSS        X0, ret+48(FP)
	VZEROUPPER
	RET

// func lookupSumAVX2(table []float32, codes []uint8) float32
// Requires AVX2; len(codes) must be a multiple of 8. As lookupSumAVX512
// with 8 lanes; the mask of VGATHERDPS is a vector register here.
TEXT ·lookupSumAVX2(SB), NOSPLIT, $0-52
	MOVQ         table_base+0(FP), SI
	MOVQ         codes_base+24(FP), DI
	MOVQ         codes_len+32(FP), CX
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	VMOVDQU      laneOffsets<>(SB), Y2
	MOVL         $2048, AX
	VMOVD        AX, X3
	VPBROADCASTD X3, Y3
	TESTQ        CX, CX
	JZ           reduce

loop8:
	VPMOVZXBD  (DI), Y4
	VPADDD     Y2, Y4, Y4
	VPADDD     Y3, Y2, Y2
	VPCMPEQD   Y6, Y6, Y6
	VGATHERDPS Y6, (SI)(Y4*4), Y5
	VADDPS     Y5, Y0, Y0
	ADDQ       $8, DI
	SUBQ       $8, CX
	JNZ        loop8

reduce:
	REDUCE_FLOAT_Y0
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET
