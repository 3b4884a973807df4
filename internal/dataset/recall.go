package dataset

// Recall returns recall@k of got against truth: over all queries, the fraction
// of each query's first k true neighbours that appear among its first k
// answers. got[q] and truth[q] are query q's ids, best first; an answer shorter
// than k simply scores fewer hits, and a truth row shorter than k (a base set
// smaller than k) only asks for the neighbours it has. Duplicate answers count
// once. Recall of no queries is 1.
func Recall(got, truth [][]int32, k int) float64 {
	hits, want := 0, 0
	for q := range truth {
		var answer []int32
		if q < len(got) {
			answer = got[q]
		}
		hits += Hits(answer, truth[q], k)
		want += min(k, len(truth[q]))
	}
	if want == 0 {
		return 1
	}
	return float64(hits) / float64(want)
}

// Hits returns how many of truth's first k ids appear among got's first k.
// It allocates nothing, so benchmarks can call it per query.
func Hits(got, truth []int32, k int) int {
	got = got[:min(k, len(got))]
	truth = truth[:min(k, len(truth))]
	hits := 0
	for _, t := range truth {
		for _, g := range got {
			if g == t {
				hits++
				break
			}
		}
	}
	return hits
}
