//go:build race

package dataset

// raceEnabled skips loading the real data set under the race detector, where
// converting 55 million pixels takes a minute and checks no concurrency.
const raceEnabled = true
