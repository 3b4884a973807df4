//go:build race

package hnsw

// raceEnabled shrinks the slower tests: the race detector makes them about
// ten times slower, and under -race they are there for the races, not recall.
const raceEnabled = true
