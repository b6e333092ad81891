package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the q-th quantile (0 < q ≤ 1) of sorted by the
// nearest-rank method: the smallest value such that at least q of the
// values are at or below it. It is exact, an element of the slice, never
// an interpolation or a histogram estimate. An empty slice gives 0.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// median returns the median of xs (the mean of the middle two for an even
// count) without modifying xs. NaN values are ignored; an empty input (or
// all NaN) gives NaN.
func median(xs []float64) float64 {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// rotate returns the targets in the order of round r: the list rotated
// left by r, so that over len(names) rounds every target runs once in
// every position (order effects such as a warm CPU or a busy page cache
// cancel out in the medians).
func rotate[T any](xs []T, r int) []T {
	if len(xs) == 0 {
		return nil
	}
	k := r % len(xs)
	out := make([]T, 0, len(xs))
	out = append(out, xs[k:]...)
	return append(out, xs[:k]...)
}

// ratio returns a/b, NaN when either is NaN or b is 0.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}
