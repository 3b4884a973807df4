//go:build amd64 && !purego

#include "textflag.h"

// Kernels for amd64: AVX2+FMA (8 float32 lanes in Y registers) and AVX-512F
// (16 lanes in Z registers). The distance kernels have the Go signature
//
//	func(a, b []float32) float32
//
// and read len(a) elements from a and b; the Go wrappers check len(b). The
// scale kernels, at the end of the file, multiply a slice in place.
//
// Register use: SI walks a, DI walks b, CX counts the elements left.
//
// Why four accumulators: an FMA has 4 cycles of latency, so a single
// accumulator would retire one FMA every 4 cycles. Each FMA here also needs
// two vector loads, one from a and one from b, and current cores sustain
// two loads per cycle, so at most one FMA per cycle can be fed: 4 cycles x 1
// FMA per cycle = 4 independent chains. Eight chains measured no faster on
// the AMD Zen 5 these kernels were tuned on (for AVX2 and AVX-512 alike); they
// only lengthen the loop and the tails. That on long vectors the AVX-512
// kernels approach twice the speed of the AVX2 ones, the ratio of their load
// widths, confirms that loads are the bound.
//
// Tails: after the unrolled loop, whole vectors are processed one at a time,
// then the last 1..7 (AVX2) or 1..15 (AVX-512) elements are loaded with a
// masked load. Masked-off lanes read as zero and do not fault, so a tail
// never touches memory past the end of the slices.
//
// The summation order depends only on len(a), never on the addresses: the
// kernels do not peel elements to align their loads (see doc.go).

// tailMask holds eight all-ones dwords followed by eight zero dwords. The
// eight dwords starting at tailMask<>+32-4*r select the first r lanes.
DATA tailMask<>+0x00(SB)/8, $0xffffffffffffffff
DATA tailMask<>+0x08(SB)/8, $0xffffffffffffffff
DATA tailMask<>+0x10(SB)/8, $0xffffffffffffffff
DATA tailMask<>+0x18(SB)/8, $0xffffffffffffffff
DATA tailMask<>+0x20(SB)/8, $0x0000000000000000
DATA tailMask<>+0x28(SB)/8, $0x0000000000000000
DATA tailMask<>+0x30(SB)/8, $0x0000000000000000
DATA tailMask<>+0x38(SB)/8, $0x0000000000000000
GLOBL tailMask<>(SB), RODATA|NOPTR, $64

// REDUCE_Y0 sums the eight lanes of Y0 into the low lane of X0, clobbering
// X1: add the high 128 bits onto the low (4 sums), the high 64 bits of that
// onto the low (2 sums), then lane 1 onto lane 0.
#define REDUCE_Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	; VADDPS     X1, X0, X0 \
	; VMOVHLPS   X0, X0, X1 \
	; VADDPS     X1, X0, X0 \
	; VMOVSHDUP  X0, X1     \
	; VADDSS     X1, X0, X0

// REDUCE_Z0 sums the sixteen lanes of Z0 into the low lane of X0, clobbering
// X1: add the high 256 bits onto the low, then finish as REDUCE_Y0.
#define REDUCE_Z0 \
	VEXTRACTF64X4 $1, Z0, Y1 \
	; VADDPS      Y1, Y0, Y0 \
	; REDUCE_Y0

// func l2SquaredAVX2(a, b []float32) float32
// Requires AVX2 and FMA.
TEXT ·l2SquaredAVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     vectors

loop32:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VSUBPS      (DI), Y4, Y4
	VSUBPS      32(DI), Y5, Y5
	VSUBPS      64(DI), Y6, Y6
	VSUBPS      96(DI), Y7, Y7
	VFMADD231PS Y4, Y4, Y0
	VFMADD231PS Y5, Y5, Y1
	VFMADD231PS Y6, Y6, Y2
	VFMADD231PS Y7, Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         loop32

vectors:
	CMPQ CX, $8
	JB   tail

loop8:
	VMOVUPS     (SI), Y4
	VSUBPS      (DI), Y4, Y4
	VFMADD231PS Y4, Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JAE         loop8

tail:
	TESTQ       CX, CX
	JZ          reduce
	LEAQ        tailMask<>+32(SB), AX
	SHLQ        $2, CX
	SUBQ        CX, AX
	VMOVDQU     (AX), Y6
	VMASKMOVPS  (SI), Y6, Y4
	VMASKMOVPS  (DI), Y6, Y5
	VSUBPS      Y5, Y4, Y4
	VFMADD231PS Y4, Y4, Y1

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	REDUCE_Y0
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func dotAVX2(a, b []float32) float32
// Requires AVX2 and FMA.
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     vectors

loop32:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         loop32

vectors:
	CMPQ CX, $8
	JB   tail

loop8:
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JAE         loop8

tail:
	TESTQ       CX, CX
	JZ          reduce
	LEAQ        tailMask<>+32(SB), AX
	SHLQ        $2, CX
	SUBQ        CX, AX
	VMOVDQU     (AX), Y6
	VMASKMOVPS  (SI), Y6, Y4
	VMASKMOVPS  (DI), Y6, Y5
	VFMADD231PS Y5, Y4, Y1

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	REDUCE_Y0
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func l2SquaredAVX512(a, b []float32) float32
// Requires AVX512F.
TEXT ·l2SquaredAVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $64
	JB     vectors

loop64:
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMOVUPS     128(SI), Z6
	VMOVUPS     192(SI), Z7
	VSUBPS      (DI), Z4, Z4
	VSUBPS      64(DI), Z5, Z5
	VSUBPS      128(DI), Z6, Z6
	VSUBPS      192(DI), Z7, Z7
	VFMADD231PS Z4, Z4, Z0
	VFMADD231PS Z5, Z5, Z1
	VFMADD231PS Z6, Z6, Z2
	VFMADD231PS Z7, Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JAE         loop64

vectors:
	CMPQ CX, $16
	JB   tail

loop16:
	VMOVUPS     (SI), Z4
	VSUBPS      (DI), Z4, Z4
	VFMADD231PS Z4, Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DI
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
	VMOVUPS.Z   (SI), K1, Z4
	VMOVUPS.Z   (DI), K1, Z5
	VSUBPS      Z5, Z4, Z4
	VFMADD231PS Z4, Z4, Z1

reduce:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	REDUCE_Z0
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func dotAVX512(a, b []float32) float32
// Requires AVX512F.
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $64
	JB     vectors

loop64:
	VMOVUPS     (SI), Z4
	VMOVUPS     64(SI), Z5
	VMOVUPS     128(SI), Z6
	VMOVUPS     192(SI), Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JAE         loop64

vectors:
	CMPQ CX, $16
	JB   tail

loop16:
	VMOVUPS     (SI), Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	CMPQ        CX, $16
	JAE         loop16

tail:
	TESTQ       CX, CX
	JZ          reduce
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K1
	VMOVUPS.Z   (SI), K1, Z4
	VMOVUPS.Z   (DI), K1, Z5
	VFMADD231PS Z5, Z4, Z1

reduce:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	REDUCE_Z0
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func scaleAVX2(v []float32, f float32)
// Requires AVX2. Multiplies each element of v by f in place. The last 1..7
// elements are done one at a time: a masked store (VMASKMOVPS) is slow on
// some AMD cores, and unlike a load it cannot be replaced by a wider access.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-28
	MOVQ         v_base+0(FP), SI
	MOVQ         v_len+8(FP), CX
	VBROADCASTSS f+24(FP), Y0
	CMPQ         CX, $32
	JB           vectors

loop32:
	VMULPS  (SI), Y0, Y1
	VMULPS  32(SI), Y0, Y2
	VMULPS  64(SI), Y0, Y3
	VMULPS  96(SI), Y0, Y4
	VMOVUPS Y1, (SI)
	VMOVUPS Y2, 32(SI)
	VMOVUPS Y3, 64(SI)
	VMOVUPS Y4, 96(SI)
	ADDQ    $128, SI
	SUBQ    $32, CX
	CMPQ    CX, $32
	JAE     loop32

vectors:
	CMPQ CX, $8
	JB   tail

loop8:
	VMULPS  (SI), Y0, Y1
	VMOVUPS Y1, (SI)
	ADDQ    $32, SI
	SUBQ    $8, CX
	CMPQ    CX, $8
	JAE     loop8

tail:
	TESTQ CX, CX
	JZ    done

loop1:
	VMULSS (SI), X0, X1
	VMOVSS X1, (SI)
	ADDQ   $4, SI
	DECQ   CX
	JNZ    loop1

done:
	VZEROUPPER
	RET

// func scaleAVX512(v []float32, f float32)
// Requires AVX512F. Multiplies each element of v by f in place; the masked
// store of the tail writes only the lanes that belong to v.
TEXT ·scaleAVX512(SB), NOSPLIT, $0-28
	MOVQ         v_base+0(FP), SI
	MOVQ         v_len+8(FP), CX
	VBROADCASTSS f+24(FP), Z0
	CMPQ         CX, $64
	JB           vectors

loop64:
	VMULPS  (SI), Z0, Z1
	VMULPS  64(SI), Z0, Z2
	VMULPS  128(SI), Z0, Z3
	VMULPS  192(SI), Z0, Z4
	VMOVUPS Z1, (SI)
	VMOVUPS Z2, 64(SI)
	VMOVUPS Z3, 128(SI)
	VMOVUPS Z4, 192(SI)
	ADDQ    $256, SI
	SUBQ    $64, CX
	CMPQ    CX, $64
	JAE     loop64

vectors:
	CMPQ CX, $16
	JB   tail

loop16:
	VMULPS  (SI), Z0, Z1
	VMOVUPS Z1, (SI)
	ADDQ    $64, SI
	SUBQ    $16, CX
	CMPQ    CX, $16
	JAE     loop16

tail:
	TESTQ     CX, CX
	JZ        done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z1
	VMULPS    Z1, Z0, Z1
	VMOVUPS   Z1, K1, (SI)

done:
	VZEROUPPER
	RET

// func addScaledAVX2(dst, x []float32, a float32)
// Requires AVX2 and FMA. dst[i] += a*x[i]; the last 1..7 elements one at a
// time, for the reason given at scaleAVX2.
TEXT ·addScaledAVX2(SB), NOSPLIT, $0-52
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         x_base+24(FP), SI
	VBROADCASTSS a+48(FP), Y0
	CMPQ         CX, $32
	JB           vectors

loop32:
	VMOVUPS     (DI), Y1
	VMOVUPS     32(DI), Y2
	VMOVUPS     64(DI), Y3
	VMOVUPS     96(DI), Y4
	VFMADD231PS (SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS     Y1, (DI)
	VMOVUPS     Y2, 32(DI)
	VMOVUPS     Y3, 64(DI)
	VMOVUPS     Y4, 96(DI)
	ADDQ        $128, DI
	ADDQ        $128, SI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JAE         loop32

vectors:
	CMPQ CX, $8
	JB   tail

loop8:
	VMOVUPS     (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, DI
	ADDQ        $32, SI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JAE         loop8

tail:
	TESTQ CX, CX
	JZ    done

loop1:
	VMOVSS      (DI), X1
	VFMADD231SS (SI), X0, X1
	VMOVSS      X1, (DI)
	ADDQ        $4, DI
	ADDQ        $4, SI
	DECQ        CX
	JNZ         loop1

done:
	VZEROUPPER
	RET

// func addScaledAVX512(dst, x []float32, a float32)
// Requires AVX512F. The masked load and store of the tail touch only the
// lanes that belong to the slices.
TEXT ·addScaledAVX512(SB), NOSPLIT, $0-52
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         x_base+24(FP), SI
	VBROADCASTSS a+48(FP), Z0
	CMPQ         CX, $64
	JB           vectors

loop64:
	VMOVUPS     (DI), Z1
	VMOVUPS     64(DI), Z2
	VMOVUPS     128(DI), Z3
	VMOVUPS     192(DI), Z4
	VFMADD231PS (SI), Z0, Z1
	VFMADD231PS 64(SI), Z0, Z2
	VFMADD231PS 128(SI), Z0, Z3
	VFMADD231PS 192(SI), Z0, Z4
	VMOVUPS     Z1, (DI)
	VMOVUPS     Z2, 64(DI)
	VMOVUPS     Z3, 128(DI)
	VMOVUPS     Z4, 192(DI)
	ADDQ        $256, DI
	ADDQ        $256, SI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JAE         loop64

vectors:
	CMPQ CX, $16
	JB   tail

loop16:
	VMOVUPS     (DI), Z1
	VFMADD231PS (SI), Z0, Z1
	VMOVUPS     Z1, (DI)
	ADDQ        $64, DI
	ADDQ        $64, SI
	SUBQ        $16, CX
	CMPQ        CX, $16
	JAE         loop16

tail:
	TESTQ       CX, CX
	JZ          done
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K1
	VMOVUPS.Z   (DI), K1, Z1
	VMOVUPS.Z   (SI), K1, Z2
	VFMADD231PS Z2, Z0, Z1
	VMOVUPS     Z1, K1, (DI)

done:
	VZEROUPPER
	RET

// func argMinAVX2(s []float32) int
// Requires AVX2; len(s) ≥ 1. Two passes: the minimum (VMINPS in four
// accumulators, all seeded with s[0] so that no lane starts with a value
// not in s), then the first element equal to it, eight at a time. Both
// passes are branch-free per element, unlike a scalar loop that tracks the
// index (about 4x slower on 256 elements).
TEXT ·argMinAVX2(SB), NOSPLIT, $0-32
	MOVQ         s_base+0(FP), SI
	MOVQ         s_len+8(FP), CX
	MOVQ         SI, R8
	MOVQ         CX, R9
	VBROADCASTSS (SI), Y0
	VMOVAPS      Y0, Y1
	VMOVAPS      Y0, Y2
	VMOVAPS      Y0, Y3
	CMPQ         CX, $32
	JB           minvectors

minloop32:
	VMINPS (SI), Y0, Y0
	VMINPS 32(SI), Y1, Y1
	VMINPS 64(SI), Y2, Y2
	VMINPS 96(SI), Y3, Y3
	ADDQ   $128, SI
	SUBQ   $32, CX
	CMPQ   CX, $32
	JAE    minloop32

minvectors:
	CMPQ CX, $8
	JB   minreduce

minloop8:
	VMINPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	CMPQ   CX, $8
	JAE    minloop8

minreduce:
	VMINPS       Y1, Y0, Y0
	VMINPS       Y3, Y2, Y2
	VMINPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMINPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMINPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMINSS       X1, X0, X0
	TESTQ        CX, CX
	JZ           find

minloop1:
	VMINSS (SI), X0, X0
	ADDQ   $4, SI
	DECQ   CX
	JNZ    minloop1

find:
	VBROADCASTSS X0, Y0
	MOVQ         R8, SI
	MOVQ         R9, CX
	XORQ         AX, AX

findloop8:
	CMPQ      CX, $8
	JB        findloop1
	VCMPPS    $0, (SI), Y0, Y1 // EQ_OQ
	VMOVMSKPS Y1, DX
	TESTL     DX, DX
	JNZ       found
	ADDQ      $32, SI
	ADDQ      $8, AX
	SUBQ      $8, CX
	JMP       findloop8

findloop1:
	// The minimum is among the last 1..7 elements.
	VUCOMISS (SI), X0
	JE       done
	ADDQ     $4, SI
	INCQ     AX
	JMP      findloop1

found:
	BSFL DX, DX
	ADDQ DX, AX

done:
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET

// func argMinAVX512(s []float32) int
// Requires AVX512F; len(s) ≥ 1. As argMinAVX2, sixteen lanes at a time; the
// tails use masked loads (merge-masked, so lanes past the end keep a value
// from s) and a masked compare.
TEXT ·argMinAVX512(SB), NOSPLIT, $0-32
	MOVQ         s_base+0(FP), SI
	MOVQ         s_len+8(FP), CX
	MOVQ         SI, R8
	MOVQ         CX, R9
	VBROADCASTSS (SI), Z0
	VMOVAPS      Z0, Z1
	VMOVAPS      Z0, Z2
	VMOVAPS      Z0, Z3
	CMPQ         CX, $64
	JB           minvectors

minloop64:
	VMINPS (SI), Z0, Z0
	VMINPS 64(SI), Z1, Z1
	VMINPS 128(SI), Z2, Z2
	VMINPS 192(SI), Z3, Z3
	ADDQ   $256, SI
	SUBQ   $64, CX
	CMPQ   CX, $64
	JAE    minloop64

minvectors:
	CMPQ CX, $16
	JB   mintail

minloop16:
	VMINPS (SI), Z0, Z0
	ADDQ   $64, SI
	SUBQ   $16, CX
	CMPQ   CX, $16
	JAE    minloop16

mintail:
	TESTQ   CX, CX
	JZ      minreduce
	MOVL    $1, AX
	SHLL    CX, AX
	DECL    AX
	KMOVW   AX, K1
	VMOVAPS Z0, Z4
	VMOVUPS (SI), K1, Z4
	VMINPS  Z4, Z0, Z0

minreduce:
	VMINPS        Z1, Z0, Z0
	VMINPS        Z3, Z2, Z2
	VMINPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMINPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMINPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMINPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMINSS        X1, X0, X0
	VBROADCASTSS  X0, Z0
	MOVQ          R8, SI
	MOVQ          R9, CX
	XORQ          AX, AX

findloop16:
	CMPQ   CX, $16
	JB     findtail
	VCMPPS $0, (SI), Z0, K2
	KMOVW  K2, DX
	TESTL  DX, DX
	JNZ    found
	ADDQ   $64, SI
	ADDQ   $16, AX
	SUBQ   $16, CX
	JMP    findloop16

findtail:
	MOVL   $1, DX
	SHLL   CX, DX
	DECL   DX
	KMOVW  DX, K1
	VCMPPS $0, (SI), Z0, K1, K2
	KMOVW  K2, DX

found:
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	VZEROUPPER
	RET
