package index

// Candidate is a node (or an IVF list) and its distance to the query: the
// element of the heaps that searches keep their beams and answers in.
type Candidate struct {
	Dist float32
	ID   uint32
}

// Less orders candidates by distance, then by id, so that answers do not
// depend on the order candidates were met in (ties are common with
// quantized distances).
func (a Candidate) Less(b Candidate) bool {
	return a.Dist < b.Dist || (a.Dist == b.Dist && a.ID < b.ID)
}

// The heaps are written out for each direction, without container/heap or
// type parameters: a search pushes and pops millions of times a second,
// and an interface or a generic dictionary call per comparison costs more
// than the comparison. Their zero values are empty heaps; push and pop
// reuse the slice's storage, so a heap kept between searches stops
// allocating once it has grown to the beam's size.

// MinHeap is a binary heap of candidates, closest on top.
type MinHeap []Candidate

// Push adds c.
func (h *MinHeap) Push(c Candidate) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !c.Less(s[p]) {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

// Pop removes and returns the closest candidate. h must not be empty.
func (h *MinHeap) Pop() Candidate {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && s[r].Less(s[l]) {
			c = r
		}
		if !s[c].Less(last) {
			break
		}
		s[i] = s[c]
		i = c
	}
	if n > 0 {
		s[i] = last
	}
	*h = s
	return top
}

// MaxHeap is a binary heap of candidates, farthest on top: the k best
// found so far, whose top is the one to drop for a closer candidate.
type MaxHeap []Candidate

// Push adds c.
func (h *MaxHeap) Push(c Candidate) {
	s := append(*h, c)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[p].Less(c) {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = c
	*h = s
}

// Pop removes and returns the farthest candidate. h must not be empty.
func (h *MaxHeap) Pop() Candidate {
	s := *h
	top := s[0]
	n := len(s) - 1
	last := s[n]
	s = s[:n]
	if n > 0 {
		s.siftDown(last)
	}
	*h = s
	return top
}

// ReplaceTop replaces the farthest candidate with c, in one sift instead of
// a Pop and a Push. h must not be empty.
func (h MaxHeap) ReplaceTop(c Candidate) { h.siftDown(c) }

// siftDown places c at the root and moves it down to its place.
func (h MaxHeap) siftDown(c Candidate) {
	n := len(h)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		ch := l
		if r := l + 1; r < n && h[l].Less(h[r]) {
			ch = r
		}
		if !c.Less(h[ch]) {
			break
		}
		h[i] = h[ch]
		i = ch
	}
	h[i] = c
}

// DrainSorted empties h into dst, reusing dst's storage when it is large
// enough, and returns it in ascending order: closest first.
func (h *MaxHeap) DrainSorted(dst []Candidate) []Candidate {
	n := len(*h)
	if cap(dst) < n {
		dst = make([]Candidate, n, n+n/2)
	}
	dst = dst[:n]
	for i := n - 1; i >= 0; i-- {
		dst[i] = h.Pop()
	}
	return dst
}

// Offer keeps c among the k best: it is pushed while h holds fewer than k,
// and otherwise replaces the farthest if it is closer (by Less, so ties go
// to the lower id).
func (h *MaxHeap) Offer(c Candidate, k int) {
	if len(*h) < k {
		h.Push(c)
	} else if c.Less((*h)[0]) {
		h.ReplaceTop(c)
	}
}

// Results empties the heap into the answer of a search that kept its best
// candidates in it: the k nearest, nearest first.
func (h *MaxHeap) Results(k int) []Result {
	for len(*h) > k {
		h.Pop()
	}
	out := make([]Result, len(*h))
	for i := len(out) - 1; i >= 0; i-- {
		c := h.Pop()
		out[i] = Result{ID: c.ID, Distance: c.Dist}
	}
	return out
}
