package redisbaseline

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// channel is the one pub/sub channel every subscriber ("node") listens on.
const channel = "presence"

// BenchmarkRedisVisible is the baseline of BENCHMARKS.md [A] (BenchmarkTrackVisibleEverywhere):
// for one presence joining a topic, the time from the write until every one of N subscriber
// connections has received the change. The writer does what a hand-written presence service on
// Redis does: HINCRBY the topic's count and SADD the member, then PUBLISH the change once the
// write is acknowledged (so a subscriber that reads after the message sees the new state).
// write=pipeline sends HINCRBY and SADD in one round trip (two in all, the fastest honest
// writer); write=sequential sends each command on its own (three round trips). Like [A], samples
// are isolated: 10 ms apart, outside the timer, and the latency is taken by the benchmark's
// goroutine when it has seen every subscriber's message.
func BenchmarkRedisVisible(b *testing.B) {
	addr := startRedis(b)
	for _, subs := range []int{3, 5, 9} {
		for _, mode := range []string{"pipeline", "sequential"} {
			b.Run(fmt.Sprintf("subscribers=%d/write=%s", subs, mode), func(b *testing.B) {
				benchVisible(b, addr, subs, mode == "pipeline")
			})
		}
	}
}

func benchVisible(b *testing.B, addr string, subs int, pipeline bool) {
	ctx := context.Background()
	got := subscribe(b, addr, subs)
	w := redis.NewClient(&redis.Options{Addr: addr})
	defer w.Close()
	if err := w.FlushDB(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for k := 0; k < b.N; k++ {
		topic := fmt.Sprintf("lat-%d", k)
		start := time.Now()
		if err := write(ctx, w, topic, "member-1", pipeline); err != nil {
			b.Fatal(err)
		}
		for i, c := range got {
			select {
			case m := <-c:
				if m != topic {
					b.Fatalf("subscriber %d got %q, want %q", i, m, topic)
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("subscriber %d never got %s", i, topic)
			}
		}
		lat = append(lat, time.Since(start))
		b.StopTimer()
		time.Sleep(10 * time.Millisecond) // isolated samples, as in [A]; outside the timer
		b.StartTimer()
	}
	b.StopTimer()
	// The writes really happened: the last topic counts one viewer and holds one member.
	last := fmt.Sprintf("lat-%d", b.N-1)
	if n, err := w.HGet(ctx, "count:"+last, "viewers").Int(); err != nil || n != 1 {
		b.Fatalf("count of %s = %d (%v), want 1", last, n, err)
	}
	if n, err := w.SCard(ctx, "members:"+last).Result(); err != nil || n != 1 {
		b.Fatalf("members of %s = %d (%v), want 1", last, n, err)
	}
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.90), "p90-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(percentile(lat, 1), "max-ms")
	b.ReportMetric(0, "ns/op")
}

// write records member's join of topic and publishes it.
func write(ctx context.Context, w *redis.Client, topic, member string, pipeline bool) error {
	if pipeline {
		_, err := w.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.HIncrBy(ctx, "count:"+topic, "viewers", 1)
			p.SAdd(ctx, "members:"+topic, member)
			return nil
		})
		if err != nil {
			return err
		}
	} else {
		if err := w.HIncrBy(ctx, "count:"+topic, "viewers", 1).Err(); err != nil {
			return err
		}
		if err := w.SAdd(ctx, "members:"+topic, member).Err(); err != nil {
			return err
		}
	}
	return w.Publish(ctx, channel, topic).Err()
}

// subscribe opens n subscriber connections (one client each, as n nodes would have), waits until
// each is subscribed, and returns one channel per subscriber with the payloads it receives. Each
// subscriber's reader goroutine stops when the benchmark ends.
func subscribe(b *testing.B, addr string, n int) []chan string {
	b.Helper()
	ctx := context.Background()
	out := make([]chan string, n)
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // registered first, so it runs after every Close below
	for i := range out {
		c := redis.NewClient(&redis.Options{Addr: addr})
		ps := c.Subscribe(ctx, channel)
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			b.Fatalf("subscriber %d: %v", i, err)
		}
		ch := make(chan string, 16)
		out[i] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := ps.ReceiveMessage(ctx)
				if err != nil {
					return // closed by the cleanup
				}
				ch <- m.Payload
			}
		}()
		b.Cleanup(func() {
			_ = ps.Close()
			_ = c.Close()
		})
	}
	return out
}

// percentile is testcluster's: the element at p of the sorted samples, in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}
