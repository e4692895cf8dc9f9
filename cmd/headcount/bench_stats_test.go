package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- { // 1..100 ms, unsorted
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	r := summarize("x", s, "")
	if r.Samples != 100 || r.P50 != 50 || r.P90 != 90 || r.P99 != 99 || r.Max != 100 || r.Mean != 50.5 {
		t.Fatalf("got %+v", r)
	}
	if s[0] != 100*time.Millisecond {
		t.Fatal("summarize reordered its input")
	}
	if r := summarize("empty", nil, ""); r.Samples != 0 || r.Max != 0 {
		t.Fatalf("empty: %+v", r)
	}
	if r := summarize("one", []time.Duration{3 * time.Millisecond}, ""); r.P50 != 3 || r.P99 != 3 {
		t.Fatalf("one: %+v", r)
	}
}
