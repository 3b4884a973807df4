// Package vec provides the vector kernels the indexes are built on:
// squared Euclidean distance ([L2Squared]), inner product ([Dot]) and
// in-place scaling to unit length ([Normalize]) of float32 vectors; the
// helpers of k-means and product quantization ([AddScaled], [ArgMin],
// [LookupSum]); and dot products of 8-bit codes for scalar quantization
// ([DotUint8Int8], [DotFloatUint8], described in int8.go).
//
// # Choosing an implementation
//
// Every kernel has a pure-Go implementation. On amd64 there are also
// assembly implementations for AVX2 with FMA (8 lanes) and for AVX-512F
// (16 lanes). During package initialization the package asks
// golang.org/x/sys/cpu what the CPU and operating system support and picks,
// once and for the life of the process:
//
//   - "avx512" if the CPU has AVX512F;
//   - otherwise "avx2-fma" if it has both AVX2 and FMA;
//   - otherwise "generic", the pure-Go kernels.
//
// The 8-bit kernels and LookupSum have their own AVX-512 versions, which
// also need AVX512BW and AVX512VL (and VNNI for DotUint8Int8; without it the
// AVX2 version is used), and AVX2 versions that leave the last few elements
// to the pure-Go code. [Int8Implementation] reports that choice.
//
// Building for any other architecture, or with the purego build tag, compiles
// only the pure-Go kernels. [Implementation] reports the choice, for logs and
// metrics.
//
// # Guarantees
//
// Results of [L2Squared] and [Dot] match the exact value within float32
// rounding, but they are not bit-identical across implementations: each
// kernel adds the terms in a different order (the pure-Go one in 4
// interleaved partial sums, the AVX2 one in 32 and the AVX-512 one in 64,
// combined at the end) and the assembly fuses each multiply with its add.
// The tests hold every kernel, for n elements, to within (n/4+8)·2⁻²⁴ times
// the sum of the terms' magnitudes of a float64 reference, and to exact
// agreement where the arithmetic is exact (small integers). Do not compare
// distances computed on different machines, or with and without the purego
// tag, for equality.
//
// For a given implementation the result depends only on the values of the
// elements, never on where the slices sit in memory, so the same pair of
// vectors always gives the same bits within a process. For every
// implementation L2Squared(a, b) == L2Squared(b, a), Dot(a, b) == Dot(b, a)
// and L2Squared(a, a) == 0 for finite a, exactly.
//
// [Normalize] computes the norm with [Dot] (in float64 if the float32 sum of
// squares would underflow or overflow), so it too rounds differently per
// implementation; the squared length of the result is 1 within 1e-5.
//
// [L2Squared] and [Dot] read the first len(a) elements of a and b, never
// beyond, and panic if len(b) < len(a). They do not allocate, do not retain
// their arguments and are safe for concurrent use on shared inputs. NaN and
// infinite inputs propagate as in IEEE 754 arithmetic.
//
// # Performance
//
// The assembly kernels are bound by loads, not arithmetic. A 64-byte AVX-512
// load that straddles two cache lines costs two, so vectors that do not
// start on a 64-byte boundary run up to 2x slower with AVX-512 (about 1.5x
// with AVX2). Go's allocator happens to return 64-byte-aligned memory for
// the common embedding sizes (128, 384, 768, 784 and 1536 float32s) but does
// not promise it; callers that pack many vectors into one slice should pad
// each row to a multiple of 16 float32s. The kernels do not realign their
// inputs themselves, because that would make the summation order, and so
// the rounding, depend on the address.
package vec
