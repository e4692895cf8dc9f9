package wsgateway

import "strconv"

// Counts are the counts of one topic as the gateway sends them: anonymous viewers, distinct
// logged-in users, and connections (sent only to channels that asked for them).
type Counts struct {
	Viewers     int `json:"viewers"`
	Users       int `json:"users"`
	Connections int `json:"connections"`
}

// view is what one channel is told: Connections is dropped unless it asked for it.
func (c Counts) view(withConns bool) Counts {
	if !withConns {
		c.Connections = 0
	}
	return c
}

func appendClass(dst []byte, name string, n int) []byte {
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":{"count":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '}')
}

// appendCounts appends the presence_state payload
// {"viewers":{"count":N},"users":{"count":M}} (plus "connections" when withConns).
func appendCounts(dst []byte, c Counts, withConns bool) []byte {
	dst = append(dst, '{')
	dst = appendClass(dst, "viewers", c.Viewers)
	dst = append(dst, ',')
	dst = appendClass(dst, "users", c.Users)
	if withConns {
		dst = append(dst, ',')
		dst = appendClass(dst, "connections", c.Connections)
	}
	return append(dst, '}')
}

// appendDiff appends the presence_diff payload taking a client from counts `from` to `to`:
// {"joins":{...},"leaves":{...}} with every class in both halves, so that
// from + joins - leaves == to for each class.
func appendDiff(dst []byte, from, to Counts, withConns bool) []byte {
	var joins, leaves Counts
	split := func(a, b int) (j, l int) {
		if b > a {
			return b - a, 0
		}
		return 0, a - b
	}
	joins.Viewers, leaves.Viewers = split(from.Viewers, to.Viewers)
	joins.Users, leaves.Users = split(from.Users, to.Users)
	joins.Connections, leaves.Connections = split(from.Connections, to.Connections)
	dst = append(dst, `{"joins":`...)
	dst = appendCounts(dst, joins, withConns)
	dst = append(dst, `,"leaves":`...)
	dst = appendCounts(dst, leaves, withConns)
	return append(dst, '}')
}
