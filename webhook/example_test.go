package webhook_test

import (
	"fmt"
	"time"

	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
)

// ExampleCore drives the decision logic by hand: the caller feeds counts and the time, sends
// what Next returns and reports the outcome with Done.
func ExampleCore() {
	cfg := webhook.DefaultConfig()
	cfg.VacateGrace = time.Second
	cfg.Seed = 1
	c, err := webhook.NewCore(cfg, "node-a", "node-a")
	if err != nil {
		panic(err)
	}
	now := time.UnixMilli(0)
	c.Observe(now, "room", tracker.Counts{Viewers: 1, Connections: 1}) // the first viewer
	fmt.Println(string(c.Next(now).Body))
	c.Done(now, true) // the receiver answered 2xx

	c.Observe(now.Add(time.Second), "room", tracker.Counts{}) // the last one leaves
	c.Tick(now.Add(1500 * time.Millisecond))                  // inside the grace: nothing
	fmt.Println(c.Next(now.Add(1500*time.Millisecond)) == nil)
	later := now.Add(2 * time.Second)
	c.Tick(later)
	fmt.Println(string(c.Next(later).Body))
	// Output:
	// {"time_ms":0,"events":[{"id":"node-a-1","name":"topic_occupied","topic":"room"}]}
	// true
	// {"time_ms":2000,"events":[{"id":"node-a-2","name":"topic_vacated","topic":"room","peak":{"viewers":{"count":1},"users":{"count":0}},"occupied_ms":1000}]}
}
