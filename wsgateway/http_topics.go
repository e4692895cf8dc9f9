package wsgateway

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/headcount-io/headcount/tracker"
)

// The topics API (issue 12): the counts of many topics in one request.
//
//	GET /v1/topics?topic=A&topic=B        the counts of each (up to maxTopicsPerRequest)
//	GET /v1/topics?prefix=P&limit=N       the N busiest topics starting with P (viewers +
//	                                      users, default defaultBusiest), and "total", the
//	                                      roll-up P* (distinct viewers and users)
//
// Busiest-N is served by the tracker's roll-up of P, which keeps its topics ranked as
// presences change: O(N) per request, however many topics the node has (the first request
// for a prefix nobody observes builds the roll-up with one scan; it then lingers).

const (
	maxTopicsPerRequest = 1000
	defaultBusiest      = 100
	maxBusiest          = 1000
)

// topicEntry is one element of "topics".
type topicEntry struct {
	Topic       string       `json:"topic"`
	Viewers     countPayload `json:"viewers"`
	Users       countPayload `json:"users"`
	Connections countPayload `json:"connections"`
}

// totalPayload is "total" of a prefix listing.
type totalPayload struct {
	Viewers     countPayload `json:"viewers"`
	Users       countPayload `json:"users"`
	Connections countPayload `json:"connections"`
}

// topicsPayload is GET /v1/topics.
type topicsPayload struct {
	Topics  []topicEntry  `json:"topics"`
	Total   *totalPayload `json:"total,omitempty"`
	Partial bool          `json:"partial,omitempty"`
}

func entryOf(topic string, c Counts) topicEntry {
	return topicEntry{Topic: topic, Viewers: countPayload{c.Viewers}, Users: countPayload{c.Users}, Connections: countPayload{c.Connections}}
}

func badRequest(w http.ResponseWriter, why string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": why})
}

// countOf returns the counts of topic for an HTTP read: a roll-up topic is built (and then
// lingers) if nobody observes it.
func (g *Gateway) countOf(topic string) (Counts, error) {
	if tracker.IsRollup(topic) {
		total, _, err := g.cfg.Tracker.Busiest(strings.TrimSuffix(topic, "*"), 0)
		return countsOf(total), err
	}
	return g.count(topic), nil
}

func (g *Gateway) serveTopics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topics, hasPrefix := q["topic"], q.Has("prefix")
	switch {
	case len(topics) > 0 && hasPrefix:
		badRequest(w, "topic and prefix are exclusive")
	case len(topics) > maxTopicsPerRequest:
		badRequest(w, "at most "+strconv.Itoa(maxTopicsPerRequest)+" topics")
	case len(topics) > 0:
		g.serveTopicList(w, r, topics)
	case hasPrefix:
		g.serveBusiest(w, r, q.Get("prefix"), q.Get("limit"))
	default:
		badRequest(w, "topic or prefix is required")
	}
}

func (g *Gateway) serveTopicList(w http.ResponseWriter, r *http.Request, topics []string) {
	for _, t := range topics {
		if !g.validTopic(t) {
			badRequest(w, "invalid topic")
			return
		}
	}
	if _, ok := g.authorizeRead(w, r, topics...); !ok {
		return
	}
	out := topicsPayload{Topics: make([]topicEntry, len(topics)), Partial: g.isPartial()}
	for i, t := range topics {
		c, err := g.countOf(t)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "too many roll-ups"})
			return
		}
		out.Topics[i] = entryOf(t, c)
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) serveBusiest(w http.ResponseWriter, r *http.Request, prefix, limitArg string) {
	limit := defaultBusiest
	if limitArg != "" {
		n, err := strconv.Atoi(limitArg)
		if err != nil || n < 1 || n > maxBusiest {
			badRequest(w, "limit must be 1.."+strconv.Itoa(maxBusiest))
			return
		}
		limit = n
	}
	if len(prefix) >= g.cfg.MaxTopicBytes {
		badRequest(w, "prefix too long")
		return
	}
	if _, ok := g.authorizeRead(w, r, prefix+"*"); !ok {
		return
	}
	total, top, err := g.cfg.Tracker.Busiest(prefix, limit)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "too many roll-ups"})
		return
	}
	out := topicsPayload{Topics: make([]topicEntry, len(top)), Partial: g.isPartial()}
	for i, tc := range top {
		out.Topics[i] = entryOf(tc.Topic, countsOf(tc.Counts))
	}
	out.Total = &totalPayload{Viewers: countPayload{total.Viewers}, Users: countPayload{total.Users}, Connections: countPayload{total.Connections}}
	writeJSON(w, http.StatusOK, out)
}
