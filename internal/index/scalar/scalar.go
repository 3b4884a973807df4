// Package scalar is 8-bit scalar quantization: each dimension of a float32
// vector is mapped to one byte, x[i] ≈ lo[i] + step[i]·code[i], with lo and
// step learned from a sample of the data. Package hnsw keeps these codes next
// to its float32 vectors and walks its graph on distances computed from them
// (a quarter of the memory traffic), then re-ranks the best candidates with
// the exact vectors.
//
// # Ranges
//
// Train learns, for every dimension (or once for all of them with
// Options.Global), the range [lo, hi] between the Options.Quantile and
// 1-Options.Quantile quantiles of the sample's values: 0 takes the minimum
// and maximum. Values outside the range are clamped to it. Nothing assumes a
// particular value range; a dimension whose sample is constant gets step 0
// and always decodes to that constant.
//
// # Distances
//
// Every metric is computed from one dot-product kernel per distance plus a
// per-vector constant ("bias") fixed at encoding time and per-query
// constants fixed by Prepare:
//
//	distance ≈ bias(code) + g(query) + m(query) · K(query, code)
//
// Asymmetric (the default): the query stays float32 and K is
// vec.DotFloatUint8 of a transformed query and the codes, so only the
// stored vector is approximated and per-dimension steps cost nothing.
// Symmetric: the query is quantized too and K is the exact integer
// vec.DotUint8Int8 (one VPDPBUSD per 64 dimensions with AVX-512 VNNI); the
// dot product of two quantized vectors separates into integer terms only if
// every dimension has the same step, so symmetric quantizers learn
// per-dimension offsets and one step, the largest range over 255.
//
// For L2 the expansion ‖x-y‖² = ‖x‖² + ‖y‖² - 2x·y is taken relative to lo,
// so that the norms are of the order of the data's spread rather than of
// its distance from the origin, which keeps float32 cancellation small.
//
// A Quantizer is immutable once built and safe for concurrent use. A Query
// is scratch for one goroutine.
package scalar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/hippo-db/hippo/internal/index"
	"github.com/hippo-db/hippo/internal/vec"
)

// Options says how Train learns the ranges.
type Options struct {
	// Metric is the distance the codes must approximate.
	Metric index.Metric
	// Symmetric quantizes queries too (see the package documentation).
	Symmetric bool
	// Global learns one range for all dimensions instead of one per
	// dimension.
	Global bool
	// Quantile trims the range: lo and hi are the Quantile and 1-Quantile
	// quantiles of the sample's values. 0 (the default) takes the minimum
	// and maximum; at most 0.1.
	Quantile float64
}

// Quantizer maps vectors of a fixed dimension to codes and computes
// approximate distances on them. It is immutable and safe for concurrent
// use.
type Quantizer struct {
	dim, stride int
	opts        Options
	lo, step    []float32
	inv         []float32 // 1/step, 0 where step is 0
}

// codeAlign is the byte multiple codes are padded to: one AVX-512 register,
// one cache line. The kernels then run without tails and, in an array of
// codes, no code straddles more cache lines than it must.
const codeAlign = 64

// maxCode is the largest code.
const maxCode = 255

// Stride returns the length of a code: Dim rounded up to a multiple of 64.
// The padding bytes are always zero.
func (q *Quantizer) Stride() int { return q.stride }

// Dim returns the vector length the quantizer was trained for.
func (q *Quantizer) Dim() int { return q.dim }

// Options returns the options the quantizer was trained with.
func (q *Quantizer) Options() Options { return q.opts }

// Range returns the learned offset and step of dimension i.
func (q *Quantizer) Range(i int) (lo, step float32) { return q.lo[i], q.step[i] }

// StrideFor returns the code length of a dim-dimensional quantizer.
func StrideFor(dim int) int { return (dim + codeAlign - 1) / codeAlign * codeAlign }

// Train learns a quantizer from n sample vectors, row(0) … row(n-1), each
// dim long. n must be at least 1 and dim between 1 and vec.MaxInt8Len.
func Train(dim, n int, row func(i int) []float32, opts Options) (*Quantizer, error) {
	if dim < 1 || dim > vec.MaxInt8Len {
		return nil, fmt.Errorf("scalar: dimension %d", dim)
	}
	if n < 1 {
		return nil, errors.New("scalar: no sample vectors")
	}
	if !opts.Metric.Valid() || !(opts.Quantile >= 0 && opts.Quantile <= 0.1) {
		return nil, fmt.Errorf("scalar: options %+v", opts)
	}
	lo, hi := make([]float32, dim), make([]float32, dim)
	if opts.Global {
		// Quantiles of at most 1<<20 values, taken evenly from the sample.
		total := n * dim
		every := max(1, total/(1<<20))
		values := make([]float32, 0, total/every+1)
		for j := 0; j < total; j += every {
			values = append(values, row(j / dim)[j%dim])
		}
		l, h := quantiles(values, opts.Quantile)
		for i := range lo {
			lo[i], hi[i] = l, h
		}
	} else {
		column := make([]float32, n)
		for i := range dim {
			for j := range n {
				column[j] = row(j)[i]
			}
			lo[i], hi[i] = quantiles(column, opts.Quantile)
		}
	}
	step := make([]float32, dim)
	if opts.Symmetric {
		var widest float32
		for i := range dim {
			widest = max(widest, hi[i]-lo[i])
		}
		for i := range step {
			step[i] = widest / maxCode
		}
	} else {
		for i := range step {
			step[i] = (hi[i] - lo[i]) / maxCode
		}
	}
	return New(dim, opts, lo, step)
}

// New returns the quantizer with the given offsets and steps, as Train
// learned them; it is how a saved quantizer is restored. It checks that the
// values are finite, the steps non-negative and, for a symmetric quantizer,
// all equal.
func New(dim int, opts Options, lo, step []float32) (*Quantizer, error) {
	if dim < 1 || dim > vec.MaxInt8Len || len(lo) != dim || len(step) != dim {
		return nil, fmt.Errorf("scalar: dimension %d with %d offsets and %d steps", dim, len(lo), len(step))
	}
	if !opts.Metric.Valid() || !(opts.Quantile >= 0 && opts.Quantile <= 0.1) {
		return nil, fmt.Errorf("scalar: options %+v", opts)
	}
	inv := make([]float32, dim)
	for i := range dim {
		l, s := lo[i], step[i]
		if isInf(l) || isInf(s) || s < 0 || isInf(l+maxCode*s) {
			return nil, fmt.Errorf("scalar: dimension %d: offset %v, step %v", i, l, s)
		}
		if opts.Symmetric && s != step[0] {
			return nil, fmt.Errorf("scalar: symmetric quantizer with steps %v and %v", step[0], s)
		}
		if s > 0 {
			inv[i] = 1 / s
			if isInf(inv[i]) {
				inv[i] = 0 // a subnormal step: treat the dimension as constant
			}
		}
	}
	return &Quantizer{dim: dim, stride: StrideFor(dim), opts: opts, lo: slices.Clone(lo), step: slices.Clone(step), inv: inv}, nil
}

// isInf reports whether f is ±Inf or NaN.
func isInf(f float32) bool { return math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) }

// quantiles returns the p and 1-p quantiles of values, reordering them.
func quantiles(values []float32, p float64) (lo, hi float32) {
	if p == 0 {
		lo, hi = values[0], values[0]
		for _, v := range values {
			lo, hi = min(lo, v), max(hi, v)
		}
		return lo, hi
	}
	n := len(values)
	i := int(p * float64(n-1))
	lo = selectNth(values, i)
	hi = selectNth(values, n-1-i)
	return lo, hi
}

// selectNth reorders values so that values[k] is the element a sort would
// put there, and returns it: quickselect with a median-of-three pivot,
// linear on average.
func selectNth(values []float32, k int) float32 {
	lo, hi := 0, len(values)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Order values[lo], values[mid], values[hi] and pivot on the middle.
		if values[mid] < values[lo] {
			values[mid], values[lo] = values[lo], values[mid]
		}
		if values[hi] < values[lo] {
			values[hi], values[lo] = values[lo], values[hi]
		}
		if values[hi] < values[mid] {
			values[hi], values[mid] = values[mid], values[hi]
		}
		pivot := values[mid]
		i, j := lo, hi
		for i <= j {
			for values[i] < pivot {
				i++
			}
			for values[j] > pivot {
				j--
			}
			if i <= j {
				values[i], values[j] = values[j], values[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return values[k]
		}
	}
	return values[k]
}

// code quantizes x in dimension i.
func (q *Quantizer) code(x float32, i int) uint8 {
	v := (x-q.lo[i])*q.inv[i] + 0.5
	switch {
	case !(v >= 1): // also NaN
		return 0
	case v >= maxCode:
		return maxCode
	}
	return uint8(v)
}

// Encode writes x's code into code (Stride bytes, padding zeroed) and
// returns the code's bias, the per-vector constant of the distance formula.
// x must be Dim long.
func (q *Quantizer) Encode(x []float32, code []uint8) (bias float32) {
	code = code[:q.stride]
	x = x[:q.dim]
	for i, v := range x {
		code[i] = q.code(v, i)
	}
	clear(code[q.dim:])
	return q.bias(code)
}

// bias computes the per-vector constant for a code (see Prepare).
func (q *Quantizer) bias(code []uint8) float32 {
	switch {
	case q.opts.Symmetric && q.opts.Metric == index.L2:
		// s²(‖c‖² - 256·Σc), exact in integers.
		var squares, sum int64
		for _, c := range code[:q.dim] {
			squares += int64(c) * int64(c)
			sum += int64(c)
		}
		s := float64(q.step[0])
		return float32(s * s * float64(squares-256*sum))
	case q.opts.Symmetric:
		// -(s·lo·c + 128·s²·Σc)
		var loDot float64
		var sum int64
		for i, c := range code[:q.dim] {
			loDot += float64(q.lo[i]) * float64(c)
			sum += int64(c)
		}
		s := float64(q.step[0])
		return float32(-(s*loDot + 128*s*s*float64(sum)))
	case q.opts.Metric == index.L2:
		// ‖step∘c‖²: the decoded vector's squared norm relative to lo.
		var squares float64
		for i, c := range code[:q.dim] {
			d := float64(q.step[i]) * float64(c)
			squares += d * d
		}
		return float32(squares)
	}
	return 0
}

// Decode writes the vector a code stands for into x (Dim long).
func (q *Quantizer) Decode(code []uint8, x []float32) {
	for i := range x[:q.dim] {
		x[i] = q.lo[i] + q.step[i]*float32(code[i])
	}
}

// Query is a query prepared for one quantizer: scratch owned by one
// goroutine and reused across queries, so that preparing does not allocate
// once the buffers have grown. The zero value is ready for Prepare.
type Query struct {
	f         []float32 // asymmetric: the transformed query, Stride long
	i         []int8    // symmetric: the query's codes minus 128, Stride long
	g, m      float32
	symmetric bool
}

// Prepare sets up qq to compute distances from x (Dim long) to codes.
func (q *Quantizer) Prepare(x []float32, qq *Query) {
	x = x[:q.dim]
	qq.symmetric = q.opts.Symmetric
	var g float64
	if q.opts.Symmetric {
		if cap(qq.i) < q.stride {
			qq.i = make([]int8, q.stride)
		}
		qq.i = qq.i[:q.stride]
		for i, v := range x {
			qq.i[i] = int8(int(q.code(v, i)) - 128)
		}
		clear(qq.i[q.dim:])
		s := q.step[0]
		switch q.opts.Metric {
		case index.L2:
			// ‖x-lo‖² - 2s²(b·c) with b·c = K + 128Σc, the Σc part in bias.
			for i, v := range x {
				d := float64(v) - float64(q.lo[i])
				g += d * d
			}
			qq.m = -2 * s * s
		default:
			for i, v := range x {
				g -= float64(v) * float64(q.lo[i])
			}
			qq.m = -s * s
		}
	} else {
		if cap(qq.f) < q.stride {
			qq.f = make([]float32, q.stride)
		}
		qq.f = qq.f[:q.stride]
		switch q.opts.Metric {
		case index.L2:
			// ‖(x-lo) - step∘c‖² = ‖x-lo‖² - 2((x-lo)∘step)·c + ‖step∘c‖².
			for i, v := range x {
				d := v - q.lo[i]
				qq.f[i] = d * q.step[i]
				g += float64(d) * float64(d)
			}
			qq.m = -2
		default:
			// -(x·lo + (x∘step)·c)
			for i, v := range x {
				qq.f[i] = v * q.step[i]
				g -= float64(v) * float64(q.lo[i])
			}
			qq.m = -1
		}
		clear(qq.f[q.dim:])
	}
	if q.opts.Metric == index.Cosine {
		g++
	}
	qq.g = float32(g)
}

// Distance returns the approximate distance from the prepared query to the
// vector with the given code (Stride long) and bias.
func (qq *Query) Distance(code []uint8, bias float32) float32 {
	if qq.symmetric {
		return bias + qq.g + qq.m*float32(vec.DotUint8Int8(code, qq.i))
	}
	return bias + qq.g + qq.m*vec.DotFloatUint8(qq.f, code)
}

// ErrCorrupt is wrapped by the errors Unmarshal returns for malformed input.
var ErrCorrupt = errors.New("hippo: scalar quantizer corrupt")

// Encoded size of a quantizer: a fixed part, then lo and step.
const fixedSize = 4 + 4 + 8

// AppendBinary appends the quantizer's serialised form to b:
//
//	u8  metric
//	u8  flags: bit 0 symmetric, bit 1 global; other bits zero
//	u16 zero
//	u32 dim
//	f64 quantile
//	dim × f32 lo, then dim × f32 step (IEEE-754 bits, little-endian)
func (q *Quantizer) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, byte(q.opts.Metric), optionFlags(q.opts), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(q.dim))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(q.opts.Quantile))
	for _, v := range q.lo {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	for _, v := range q.step {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b, nil
}

func optionFlags(o Options) byte {
	var f byte
	if o.Symmetric {
		f |= 1
	}
	if o.Global {
		f |= 2
	}
	return f
}

// EncodedSize returns the length of AppendBinary's output for dim dimensions.
func EncodedSize(dim int) int { return fixedSize + 8*dim }

// Unmarshal restores a quantizer serialised by AppendBinary, which must fill
// b exactly. Malformed input gives an error wrapping ErrCorrupt.
func Unmarshal(b []byte) (*Quantizer, error) {
	if len(b) < fixedSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(b))
	}
	le := binary.LittleEndian
	metric, flags := index.Metric(b[0]), b[1]
	dim := int(le.Uint32(b[4:]))
	quantile := math.Float64frombits(le.Uint64(b[8:]))
	if b[2] != 0 || b[3] != 0 || flags&^3 != 0 || dim < 1 || dim > vec.MaxInt8Len || len(b) != EncodedSize(dim) {
		return nil, fmt.Errorf("%w: header %x, %d bytes", ErrCorrupt, b[:fixedSize], len(b))
	}
	lo, step := make([]float32, dim), make([]float32, dim)
	for i := range dim {
		lo[i] = math.Float32frombits(le.Uint32(b[fixedSize+4*i:]))
		step[i] = math.Float32frombits(le.Uint32(b[fixedSize+4*(dim+i):]))
	}
	q, err := New(dim, Options{Metric: metric, Symmetric: flags&1 != 0, Global: flags&2 != 0, Quantile: quantile}, lo, step)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return q, nil
}
