package hnsw

// SetQuantizationForTest turns quantization on (or changes its options) on a
// built index and learns the ranges from all its nodes, so that benchmarks
// can compare search variants on one graph. Not safe concurrently with
// Append.
func SetQuantizationForTest(ix *Index, q Quantization) {
	if !q.Int8 {
		ix.quantization = Quantization{}
		ix.codes.Store(nil)
		return
	}
	if q.TrainSize == 0 {
		q.TrainSize = DefaultTrainSize
	}
	ix.quantization = q
	ix.retrainAt(ix.count.Load())
}
