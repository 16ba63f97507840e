//go:build !race

package wirecore_test

const raceEnabled = false
