package main

import (
	"slices"
	"time"
)

// benchResult is one line of the bench table.
type benchResult struct {
	Name    string  `json:"name"`
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	Mean    float64 `json:"mean_ms"`
	Note    string  `json:"note,omitempty"`
}

// summarize computes percentiles (nearest rank) of samples, in milliseconds.
func summarize(name string, samples []time.Duration, note string) benchResult {
	r := benchResult{Name: name, Samples: len(samples), Note: note}
	if len(samples) == 0 {
		return r
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	r.P50, r.P90, r.P99, r.Max = ms(rank(0.50)), ms(rank(0.90)), ms(rank(0.99)), ms(s[len(s)-1])
	r.Mean = ms(sum / time.Duration(len(s)))
	return r
}
