package wsgateway

import "strconv"

// Counts are the counts of one topic as the gateway sends them: anonymous viewers, distinct
// logged-in users, and connections (sent only to channels that asked for them).
type Counts struct {
	Viewers     int `json:"viewers"`
	Users       int `json:"users"`
	Connections int `json:"connections"`

	partial bool // a member is suspect or down: some presences are missing (partial.go)
}

// shape is the optional fields a channel asked for in its join.
type shape uint8

const (
	shapeConns   shape = 1 << iota // {"connections": true}
	shapePartial                   // {"partial": true}
	shapes                         // the number of shapes
)

// view is what one channel is told: Connections and partial are dropped unless it asked.
func (c Counts) view(sh shape) Counts {
	if sh&shapeConns == 0 {
		c.Connections = 0
	}
	if sh&shapePartial == 0 {
		c.partial = false
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
func appendCounts(dst []byte, c Counts, sh shape) []byte {
	dst = append(dst, '{')
	dst = appendClass(dst, "viewers", c.Viewers)
	dst = append(dst, ',')
	dst = appendClass(dst, "users", c.Users)
	if sh&shapeConns != 0 {
		dst = append(dst, ',')
		dst = appendClass(dst, "connections", c.Connections)
	}
	if sh&shapePartial != 0 {
		dst = append(dst, `,"partial":`...)
		dst = strconv.AppendBool(dst, c.partial)
	}
	return append(dst, '}')
}

// appendDiff appends the presence_diff payload taking a client from counts `from` to `to`:
// {"joins":{...},"leaves":{...}} with every class in both halves, so that
// from + joins - leaves == to for each class (plus "partial", to's, when the shape has it).
func appendDiff(dst []byte, from, to Counts, sh shape) []byte {
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
	dst = appendCounts(dst, joins, sh&^shapePartial)
	dst = append(dst, `,"leaves":`...)
	dst = appendCounts(dst, leaves, sh&^shapePartial)
	if sh&shapePartial != 0 {
		dst = append(dst, `,"partial":`...)
		dst = strconv.AppendBool(dst, to.partial)
	}
	return append(dst, '}')
}
