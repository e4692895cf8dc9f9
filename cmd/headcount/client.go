package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// clientFlags are the flags of the HTTP API clients (members, count).
type clientFlags struct {
	addr    string
	json    bool
	timeout time.Duration
}

func (c *clientFlags) register(fs *flagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4000", "HTTP address of a node (host:port or URL)")
	fs.BoolVar(&c.json, "json", false, "print the node's JSON answer as is")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "how long to wait for the answer")
}

// baseURL turns --addr into a URL without a trailing slash.
func (c *clientFlags) baseURL() (string, error) {
	a := c.addr
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || u.Host == "" {
		return "", usagef("--addr %q is not host:port or a URL", c.addr)
	}
	return strings.TrimRight(a, "/"), nil
}

// get fetches path from the node and returns the body of a 200 answer.
func (c *clientFlags) get(ctx context.Context, path string) ([]byte, error) {
	base, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", base+path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// member is one row of GET /v1/members.
type member struct {
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	HTTP   string `json:"http"`
	Status string `json:"status"`
	Epoch  uint64 `json:"epoch"`
	Self   bool   `json:"self"`
	// Since is when the member entered Status (zero from nodes that do not say).
	Since time.Time `json:"since"`
}

// decodeMembers accepts either a JSON array of members or an object with a
// "members" array.
func decodeMembers(body []byte) ([]member, error) {
	var list []member
	if err := json.Unmarshal(body, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		Members []member `json:"members"`
	}
	if err := json.Unmarshal(body, &wrapped); err != nil {
		return nil, fmt.Errorf("decoding /v1/members: %w", err)
	}
	return wrapped.Members, nil
}

func runMembers(ctx context.Context, e *env, args []string) error {
	var c clientFlags
	fs := newFlagSet(e, "members [--addr host:port] [--json]")
	c.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	body, err := c.get(ctx, "/v1/members")
	if err != nil {
		return err
	}
	if c.json {
		_, err = fmt.Fprintln(e.stdout, strings.TrimSpace(string(body)))
		return err
	}
	ms, err := decodeMembers(body)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tSINCE\tGOSSIP\tHTTP\tEPOCH")
	now := time.Now()
	for _, m := range ms {
		name := m.Name
		if m.Self {
			name += " (self)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", name, m.Status, sinceString(now, m.Since), m.Addr, m.HTTP, m.Epoch)
	}
	return tw.Flush()
}

// class is one count of GET /v1/topics/{topic}: {"count": N}.
type class struct {
	Count int `json:"count"`
}

// counts is the answer of GET /v1/topics/{topic}.
type counts struct {
	Viewers     class  `json:"viewers"`
	Users       class  `json:"users"`
	Connections *class `json:"connections,omitempty"`
}

func runCount(ctx context.Context, e *env, args []string) error {
	var c clientFlags
	fs := newFlagSet(e, "count [--addr host:port] [--json] TOPIC")
	c.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one TOPIC argument, got %d", fs.NArg())
	}
	topic := fs.Arg(0)
	body, err := c.get(ctx, "/v1/topics/"+url.PathEscape(topic))
	if err != nil {
		return err
	}
	if c.json {
		_, err = fmt.Fprintln(e.stdout, strings.TrimSpace(string(body)))
		return err
	}
	var n counts
	if err := json.Unmarshal(body, &n); err != nil {
		return fmt.Errorf("decoding counts of %q: %w", topic, err)
	}
	fmt.Fprintf(e.stdout, "viewers      %d\nusers        %d\n", n.Viewers.Count, n.Users.Count)
	if n.Connections != nil {
		fmt.Fprintf(e.stdout, "connections  %d\n", n.Connections.Count)
	}
	return nil
}

// sinceString shows how long ago t was ("3m12s ago"), "-" when unknown. The
// time comes from the node's clock, so it is as right as the two clocks agree.
func sinceString(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second).String() + " ago"
}
