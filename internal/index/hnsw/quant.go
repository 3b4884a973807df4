package hnsw

import (
	"sync/atomic"

	"github.com/hippo-db/hippo/internal/index/scalar"
)

// trainSample is the most nodes the ranges are learned from, taken evenly
// over the index. Per-dimension minima, maxima and quantiles of 8,192 values
// are stable to well under one code step for the data sets we measured, and
// learning stays in the tens of milliseconds at 1,536 dimensions.
const trainSample = 8192

// retrainFactor and retrains set when Append learns the ranges again: at
// TrainSize·8 and TrainSize·64 nodes. Each time every code is recomputed,
// which costs Len·Dim work on the appender (about 50 ms for 65,536 vectors
// of 784 dimensions), so it happens a bounded number of times and no more
// once the index is large; Retrain forces it.
const (
	retrainFactor = 8
	retrains      = 2
)

// codeSet is one generation of int8 codes: a quantizer and the codes of
// nodes 0 … covered-1 computed with it, in chunks parallel to the vector
// chunks. A generation is replaced as a whole when the ranges are learned
// again, so a search that loaded one sees consistent codes; nodes appended
// after it was replaced are not covered and are measured exactly.
type codeSet struct {
	quantizer *scalar.Quantizer
	stride    int    // bytes per code
	trainedAt uint32 // Len when the ranges were learned
	// covered is stored by the appender after a node's code is written and
	// before the node is published.
	covered atomic.Uint32
	// chunks is replaced copy-on-grow like Index.chunks; chunks never move.
	chunks atomic.Pointer[[]*codeChunk]
}

type codeChunk struct {
	codes []uint8   // stride bytes per node
	bias  []float32 // the quantizer's per-code constant, per node
}

func newCodeSet(q *scalar.Quantizer, trainedAt uint32) *codeSet {
	cs := &codeSet{quantizer: q, stride: q.Stride(), trainedAt: trainedAt}
	dir := make([]*codeChunk, 0, 16)
	cs.chunks.Store(&dir)
	return cs
}

// encode computes node id's code. Only the appender calls it, for ids in
// order, before publishing the node.
func (cs *codeSet) encode(ix *Index, id uint32, v []float32) {
	dir := *cs.chunks.Load()
	ci := int(id >> ix.chunkShift)
	if ci == len(dir) {
		n := 1 << ix.chunkShift
		dir = append(dir, &codeChunk{codes: make([]uint8, n*cs.stride), bias: make([]float32, n)})
		cs.chunks.Store(&dir)
	}
	c, slot := dir[ci], int(id&ix.chunkMask)
	c.bias[slot] = cs.quantizer.Encode(v, c.codes[slot*cs.stride:(slot+1)*cs.stride])
	cs.covered.Store(id + 1)
}

func (cs *codeSet) memoryBytes(ix *Index) int64 {
	chunks := int64(len(*cs.chunks.Load()))
	return chunks * (int64(1) << ix.chunkShift) * int64(cs.stride+4)
}

// train learns the ranges from the nodes appended so far, computes every
// code and publishes the new generation; then it schedules the next
// training. Only the appender calls it.
func (ix *Index) train() {
	n := ix.count.Load()
	ix.retrainAt(n)
	ix.nextTrain = nextTrainAfter(n, uint32(ix.quantization.TrainSize))
}

// nextTrainAfter returns the Len of the training after one at n: the next
// of TrainSize·8, TrainSize·64 above n, or 0 for none. TrainSize is at most
// 1<<24, so nothing overflows.
func nextTrainAfter(n, trainSize uint32) uint32 {
	for at, i := uint64(trainSize), 0; i <= retrains; at, i = at*retrainFactor, i+1 {
		if at > uint64(n) {
			return uint32(at)
		}
	}
	return 0
}

// retrainAt learns a quantizer from the first n nodes and publishes a
// generation with their codes.
func (ix *Index) retrainAt(n uint32) {
	if n == 0 {
		return
	}
	samples := min(int(n), trainSample)
	q, err := scalar.Train(ix.dim, samples, func(i int) []float32 {
		return ix.vector(uint32(int64(i) * int64(n) / int64(samples)))
	}, ix.scalarOptions())
	if err != nil {
		panic("hnsw: " + err.Error()) // New checked every option
	}
	ix.publishCodes(q, n, n)
}

// publishCodes computes the codes of nodes 0 … n-1 with q and makes them
// the current generation.
func (ix *Index) publishCodes(q *scalar.Quantizer, trainedAt, n uint32) {
	cs := newCodeSet(q, trainedAt)
	for id := range n {
		cs.encode(ix, id, ix.vector(id))
	}
	ix.codes.Store(cs)
}

func (ix *Index) scalarOptions() scalar.Options {
	return scalar.Options{Metric: ix.metric, Symmetric: ix.quantization.Symmetric,
		Global: ix.quantization.Global, Quantile: ix.quantization.Quantile}
}

// Retrain learns the int8 ranges again from the nodes appended so far and
// recomputes every code, for data whose distribution has drifted since the
// automatic trainings. It does nothing on an index without quantization. It
// must not run concurrently with Append (it is part of the single writer);
// searches and links may go on.
func (ix *Index) Retrain() {
	if ix.quantization.Int8 {
		ix.retrainAt(ix.count.Load())
	}
}

// Quantizer returns the current int8 quantizer, or nil when the index is not
// quantized or has not learned its ranges yet.
func (ix *Index) Quantizer() *scalar.Quantizer {
	if cs := ix.codes.Load(); cs != nil {
		return cs.quantizer
	}
	return nil
}
