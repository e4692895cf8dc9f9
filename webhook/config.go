package webhook

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/tracker"
)

// Events selects which event names are sent. The state machine runs whatever is selected, so
// turning counts on or off never changes when occupied and vacated fire.
type Events struct {
	Occupied bool
	Vacated  bool
	Counts   bool
}

// ParseEvents parses the --webhook-events list: comma-separated names among occupied, vacated
// and counts (the "topic_" prefix may be given). An empty list is an error.
func ParseEvents(s string) (Events, error) {
	var e Events
	any := false
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimPrefix(strings.TrimSpace(f), "topic_") {
		case "occupied":
			e.Occupied = true
		case "vacated":
			e.Vacated = true
		case "counts":
			e.Counts = true
		case "":
			continue
		default:
			return Events{}, fmt.Errorf("%w: event %q: want occupied, vacated or counts", ErrConfig, strings.TrimSpace(f))
		}
		any = true
	}
	if !any {
		return Events{}, fmt.Errorf("%w: no events selected", ErrConfig)
	}
	return e, nil
}

// String returns the list in ParseEvents' form.
func (e Events) String() string {
	var out []string
	if e.Occupied {
		out = append(out, "occupied")
	}
	if e.Vacated {
		out = append(out, "vacated")
	}
	if e.Counts {
		out = append(out, "counts")
	}
	return strings.Join(out, ",")
}

func (e Events) want(name string) bool {
	switch name {
	case NameOccupied:
		return e.Occupied
	case NameVacated:
		return e.Vacated
	case NameCounts:
		return e.Counts
	}
	return false
}

// Config configures a Hook (all fields) or a Core (the decision fields). Start from
// DefaultConfig or TestConfig.
type Config struct {
	// URL receives the POSTs (http or https). Required by New.
	URL string
	// Secret keys the HMAC-SHA256 signature of every body. Required by New.
	Secret []byte
	// Events selects the event names sent (default occupied and vacated).
	Events Events
	// Debounce is the least time between two topic_counts of one topic: the first change after
	// a quiet spell opens a window, and the counts at its end are sent if they differ from the
	// last ones sent.
	Debounce time.Duration
	// VacateGrace is how long a topic must stay empty before topic_vacated; a presence coming
	// back inside it (a page reload) sends nothing. 0 vacates at once.
	VacateGrace time.Duration
	// Retain is how long a vacated topic is remembered so that a node taking it over can send
	// its topic_vacated again. It must cover failure detection.
	Retain time.Duration

	// BatchMax is the most events in one POST.
	BatchMax int
	// BatchWait is the longest an event waits for others to join its batch. After a quiet spell
	// (no batch for BatchWait) an event leaves at once: batching only delays events under load.
	BatchWait time.Duration
	// QueueMax is the most events waiting (besides the batch in flight). When it is full, a
	// topic's waiting events and its new one coalesce (counted as dropped) into a mark "send
	// this topic's state", which keeps the topic's place in line: memory is bounded by
	// QueueMax events plus one mark per known topic, and no topic starves.
	QueueMax int
	// Timeout bounds one POST, from dial to the end of the response.
	Timeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff between attempts of a batch; each
	// delay is drawn between half and all of min(RetryMin*2^(attempt-1), RetryMax).
	RetryMin time.Duration
	RetryMax time.Duration
	// MaxAttempts is how many times a batch is tried before it is dropped (counted, and its
	// topics marked to send their state, as for a full queue).
	MaxAttempts int
	// Handover is how long a node keeps delivering every queued event of a topic it lost to a
	// member that appeared; after it, only events that still agree with the topic's state as
	// this node sees it are delivered. 0 means Timeout.
	Handover time.Duration
	// Settle is how long after a member appears every node re-sends the state of the topics it
	// owns. It must exceed Handover + Timeout + the spread of the membership change over the
	// nodes. 0 means Handover + Timeout + 1 s.
	Settle time.Duration
	// MembersInterval is how often the Hook reads Members.
	MembersInterval time.Duration
	// Seed seeds the backoff jitter (0 = random at New).
	Seed uint64

	// Name is this node's member name; "" means Tracker.Self().Name.
	Name string
	// IDPrefix starts every event id (ids are IDPrefix, "-", a sequence number). "" means
	// Name, "-" and the tracker's epoch in base 36, unique per incarnation.
	IDPrefix string
	// Tracker is the source of counts. Required by New.
	Tracker *tracker.Tracker
	// Members returns the names of the members alive, this node included or not. It is called
	// from the Hook's goroutine every MembersInterval and must not block. Required by New.
	Members func() []string
	// Client sends the POSTs (nil = a client with Timeout and no redirects).
	Client *http.Client
	// Logger receives a debug line per delivery and rate-limited warnings; nil discards.
	Logger *slog.Logger
	// Registerer, when not nil, receives the headcount_webhook_* metrics.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the production settings, without URL, Secret or sources.
func DefaultConfig() Config {
	return Config{
		Events:          Events{Occupied: true, Vacated: true},
		Debounce:        time.Second,
		VacateGrace:     5 * time.Second,
		Retain:          2 * time.Minute,
		BatchMax:        100,
		BatchWait:       50 * time.Millisecond,
		QueueMax:        100000,
		Timeout:         5 * time.Second,
		RetryMin:        250 * time.Millisecond,
		RetryMax:        30 * time.Second,
		MaxAttempts:     12,
		MembersInterval: 100 * time.Millisecond,
	}
}

// TestConfig returns settings for tests and one machine: short grace, debounce and timeouts.
func TestConfig() Config {
	c := DefaultConfig()
	c.Debounce = 50 * time.Millisecond
	c.VacateGrace = 200 * time.Millisecond
	c.BatchWait = 5 * time.Millisecond
	c.Timeout = time.Second
	c.RetryMin = 20 * time.Millisecond
	c.RetryMax = 200 * time.Millisecond
	c.MembersInterval = 20 * time.Millisecond
	return c
}

// normalize fills the derived defaults and checks the decision fields.
func (c *Config) normalize() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrConfig, field, why) }
	if c.Handover == 0 {
		c.Handover = c.Timeout
	}
	if c.Settle == 0 {
		c.Settle = c.Handover + c.Timeout + time.Second
	}
	switch {
	case !c.Events.Occupied && !c.Events.Vacated && !c.Events.Counts:
		return bad("Events", "selects nothing")
	case c.Debounce <= 0:
		return bad("Debounce", "must be > 0")
	case c.VacateGrace < 0:
		return bad("VacateGrace", "must be >= 0")
	case c.Retain <= 0:
		return bad("Retain", "must be > 0")
	case c.BatchMax <= 0:
		return bad("BatchMax", "must be > 0")
	case c.BatchWait < 0:
		return bad("BatchWait", "must be >= 0")
	case c.QueueMax <= 0:
		return bad("QueueMax", "must be > 0")
	case c.Timeout <= 0:
		return bad("Timeout", "must be > 0")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return bad("RetryMin/RetryMax", "must be > 0 with RetryMax >= RetryMin")
	case c.MaxAttempts <= 0:
		return bad("MaxAttempts", "must be > 0")
	case c.Handover < 0:
		return bad("Handover", "must be >= 0")
	case c.Settle <= c.Handover:
		return bad("Settle", "must exceed Handover")
	}
	return nil
}

// validate checks the fields New needs on top of the decision fields.
func (c *Config) validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrConfig, field, why) }
	if err := c.normalize(); err != nil {
		return err
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return bad("URL", "is empty")
	case err != nil:
		return bad("URL", err.Error())
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return bad("URL", "must be an http:// or https:// URL with a host")
	case len(c.Secret) == 0:
		return bad("Secret", "is empty")
	case c.Tracker == nil:
		return bad("Tracker", "is nil")
	case c.Members == nil:
		return bad("Members", "is nil")
	case c.MembersInterval <= 0:
		return bad("MembersInterval", "must be > 0")
	}
	return nil
}
