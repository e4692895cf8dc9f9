package tracker_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/headcount-io/headcount/internal/simnet"
	"github.com/headcount-io/headcount/tracker"
)

var (
	simSchedules = flag.Int("sim.schedules", defaultSchedules, "random simulator schedules to run")
	simSeed      = flag.Uint64("sim.seed", 0, "run only this schedule seed (0 = all)")
	simParanoid  = flag.Bool("sim.paranoid", false, "verify every tracker after every simulated event")
	simBudget    = flag.Duration("sim.budget", 4*time.Minute, "wall-clock bound for the schedules")
)

var simTopics = []string{"t0", "t1", "t2"}

// runScheduleStats plays one random schedule of operations and faults, heals
// the network, lets it settle and checks every node against ground truth.
// It also returns the sum of the nodes' tracker stats, to check which
// replication paths a run exercised.
func runScheduleStats(seed uint64) (string, tracker.Stats, error) {
	var sum tracker.Stats
	cfg := tracker.LocalConfig()
	cfg.PermdownPeriod = 2 * time.Second
	// Small logs and snapshot parts make catch-up go through snapshots,
	// gathered from parts, as often as through logged deltas.
	cfg.LogMaxOps = 4 + int(seed%5)*8
	cfg.SnapshotChunk = 1 + int(seed%7)
	cfg.DeadRetention = 20 * time.Second
	net, err := simnet.New(simnet.Config{
		Seed:        seed,
		Nodes:       3 + int(seed%4),
		Tracker:     cfg,
		TickEvery:   5 * time.Millisecond,
		MaxDelay:    time.Duration(seed%4) * 10 * time.Millisecond,
		DetectAfter: 200 * time.Millisecond,
	})
	if err != nil {
		return "", sum, err
	}
	net.Paranoid = *simParanoid
	rng := net.Rand()
	var trace []string
	logf := func(f string, a ...any) {
		trace = append(trace, fmt.Sprintf("%v ", net.Now().Sub(time.Unix(1_000_000, 0)))+fmt.Sprintf(f, a...))
	}
	alive := func() []int {
		var out []int
		for i, nd := range net.Nodes() {
			if nd.Alive() {
				out = append(out, i)
			}
		}
		return out
	}
	pick := func(xs []int) int { return xs[rng.IntN(len(xs))] }
	users := []string{"", "", "u1", "u2", "u3"}
	steps := 20 + rng.IntN(60)
	for range steps {
		for _, nd := range net.Nodes() {
			if err := nd.T.Verify(); err != nil && nd.Alive() {
				return fmt.Sprint(trace), sum, fmt.Errorf("%s: %w", nd.Name, err)
			}
		}
		live := alive()
		if len(live) == 0 {
			i := rng.IntN(len(net.Nodes()))
			logf("restart %d (none alive)", i)
			if err := net.Restart(i); err != nil {
				return "", sum, err
			}
			continue
		}
		i := pick(live)
		nd := net.Node(i)
		switch r := rng.IntN(100); {
		case r < 35:
			tp, u := simTopics[rng.IntN(len(simTopics))], users[rng.IntN(len(users))]
			o, err := net.Track(i, tp, u)
			if err != nil {
				return "", sum, err
			}
			logf("track %d owner %d %s %q", i, o, tp, u)
		case r < 42:
			if os := nd.Owners(); len(os) > 0 {
				o := os[rng.IntN(len(os))]
				tp := simTopics[rng.IntN(len(simTopics))]
				u := nd.T.List(nd.Topics(o)[0])
				_ = u
				if err := net.TrackMore(i, o, tp, users[rng.IntN(len(users))]); err == nil {
					logf("track-more %d owner %d %s", i, o, tp)
				}
			}
		case r < 52:
			if os := nd.Owners(); len(os) > 0 {
				o := os[rng.IntN(len(os))]
				tp := nd.Topics(o)[0]
				if err := net.Untrack(i, o, tp); err != nil {
					return "", sum, err
				}
				logf("untrack %d owner %d %s", i, o, tp)
			}
		case r < 58:
			if os := nd.Owners(); len(os) > 0 {
				o := os[rng.IntN(len(os))]
				net.Close(i, o)
				logf("close %d owner %d", i, o)
			}
		case r < 62:
			if os := nd.Owners(); len(os) > 0 {
				o := os[rng.IntN(len(os))]
				if err := net.Update(i, o, nd.Topics(o)[0], []byte{byte(rng.IntN(256))}); err != nil {
					return "", sum, err
				}
				logf("update %d owner %d", i, o)
			}
		case r < 80:
			d := time.Duration(rng.IntN(60)) * time.Millisecond
			logf("run %v", d)
			net.RunFor(d)
		case r < 84:
			drop, dup := float64(rng.IntN(4))/10, float64(rng.IntN(3))/10
			logf("loss %.1f dup %.1f", drop, dup)
			net.SetLoss(drop, dup)
		case r < 88:
			var a, b []int
			for _, j := range live {
				if rng.IntN(2) == 0 {
					a = append(a, j)
				} else {
					b = append(b, j)
				}
			}
			logf("partition %v | %v", a, b)
			net.Partition(a, b)
			if rng.IntN(3) == 0 {
				logf("run long (permdown across the cut)")
				net.RunFor(cfg.PermdownPeriod + time.Second)
			}
		case r < 92:
			logf("heal")
			net.Heal()
		case r < 94:
			logf("kill %d", i)
			net.Kill(i)
		case r < 95:
			j := rng.IntN(len(net.Nodes()))
			// Epochs carry no order: half the restarts get a random one,
			// often lower than the last (the clock stepped back).
			if rng.IntN(2) == 0 {
				e := rng.Uint64() >> 1
				logf("restart %d epoch %d", j, e)
				if err := net.RestartWithEpoch(j, e); err != nil {
					return "", sum, err
				}
			} else {
				logf("restart %d", j)
				if err := net.Restart(j); err != nil {
					return "", sum, err
				}
			}
		case r < 96:
			e := rng.Uint64() >> 1
			logf("impostor of %d epoch %d", i, e)
			if err := net.Impostor(i, e, simTopics[rng.IntN(len(simTopics))]); err != nil {
				return "", sum, err
			}
		case r < 98:
			logf("leave %d", i)
			net.Leave(i)
		default:
			j, err := net.Add()
			if err != nil {
				return "", sum, err
			}
			logf("add %d", j)
		}
	}
	logf("heal, no loss, settle")
	net.Heal()
	net.SetLoss(0, 0)
	net.RunFor(4 * time.Second)
	if net.Failure != nil {
		return fmt.Sprint(trace), sum, net.Failure
	}
	if err := net.Check(simTopics); err != nil {
		for _, nd := range net.Nodes() {
			trace = append(trace, fmt.Sprintf("\n%s alive=%v replicas=%+v stats=%+v", nd.Name, nd.Alive(), nd.T.Replicas(), nd.T.Stats()))
			for _, tp := range simTopics {
				trace = append(trace, fmt.Sprintf("\n  %s %v truth %v", tp, simnet.List(nd, tp), net.TruthList(tp)))
			}
		}
		return fmt.Sprint(trace), sum, err
	}
	for _, nd := range net.Nodes() {
		st := nd.T.Stats()
		sum.SnapshotParts += st.SnapshotParts
		sum.SnapshotsApplied += st.SnapshotsApplied
		sum.Gaps += st.Gaps
		sum.Permdowns += st.Permdowns
		sum.Ignored += st.Ignored
	}
	return "", sum, nil
}

// TestSimulatorRandomSchedules is the core invariant: after any schedule of
// operations, drops, duplicates, reorders, partitions, crashes, restarts
// and leaves, once the network heals and quiets down, every node's counts
// and lists equal the ground truth computed from the live owners. No ghosts.
func TestSimulatorRandomSchedules(t *testing.T) {
	start := time.Now()
	first, n := uint64(1), uint64(*simSchedules)
	if *simSeed != 0 {
		first, n = *simSeed, 1
	}
	ran := 0
	var total tracker.Stats
	for seed := first; seed < first+n; seed++ {
		if time.Since(start) > *simBudget {
			t.Fatalf("time budget %v exhausted after %d of %d schedules", *simBudget, ran, n)
		}
		trace, st, err := runScheduleStats(seed)
		if err != nil {
			t.Fatalf("seed %d: %v\nreplay: go test ./tracker -run TestSimulatorRandomSchedules -sim.seed=%d\ntrace: %s", seed, err, seed, trace)
		}
		total.SnapshotParts += st.SnapshotParts
		total.SnapshotsApplied += st.SnapshotsApplied
		total.Gaps += st.Gaps
		total.Permdowns += st.Permdowns
		total.Ignored += st.Ignored
		ran++
	}
	t.Logf("%d schedules passed in %v; exercised: %d gaps, %d snapshots applied, %d snapshot parts, %d permdowns, %d messages of dead or superseded incarnations ignored",
		ran, time.Since(start).Round(time.Millisecond), total.Gaps, total.SnapshotsApplied, total.SnapshotParts, total.Permdowns, total.Ignored)
	if n >= 100 && (total.Gaps == 0 || total.SnapshotsApplied == 0 || total.SnapshotParts == 0 || total.Permdowns == 0 || total.Ignored == 0) {
		t.Fatalf("the schedules did not exercise every replication path: %+v", total)
	}
}

// TestSimulatorIsDeterministic pins that one seed gives one run.
func TestSimulatorIsDeterministic(t *testing.T) {
	run := func() (int, int) {
		net, err := simnet.New(simnet.Config{Seed: 42, Nodes: 4, Tracker: tracker.LocalConfig(), MaxDelay: 20 * time.Millisecond, DetectAfter: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		net.SetLoss(0.2, 0.1)
		for i := range 50 {
			if _, err := net.Track(i%4, simTopics[i%3], ""); err != nil {
				t.Fatal(err)
			}
			net.RunFor(7 * time.Millisecond)
		}
		net.RunFor(time.Second)
		return net.Delivered, net.Bytes
	}
	d1, b1 := run()
	d2, b2 := run()
	if d1 != d2 || b1 != b2 {
		t.Fatalf("two runs of one seed differ: %d/%d messages, %d/%d bytes", d1, d2, b1, b2)
	}
}
