//go:build race

package bench

// raceEnabled: under the race detector the child's shadow memory adds to
// its RSS, so upper bounds on RSS are looser.
const raceEnabled = true
