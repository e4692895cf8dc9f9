package wsload

import "testing"

func TestDiffDelta(t *testing.T) {
	cases := []struct {
		frame string
		want  int64
		ok    bool
	}{
		{`[null,null,"t","presence_diff",{"joins":{"viewers":{"count":3},"users":{"count":1}},"leaves":{"viewers":{"count":0},"users":{"count":2}}}]`, 2, true},
		{`[null,null,"t","presence_diff",{"leaves":{"users":{"count":2},"viewers":{"count":0}},"joins":{"viewers":{"count":3},"users":{"count":1}}}]`, 2, true},
		{`[null,null,"t","presence_diff",{"joins":{"viewers":{"count":1},"users":{"count":0},"connections":{"count":1}},"leaves":{"viewers":{"count":0},"users":{"count":0},"connections":{"count":0}}}]`, 1, true},
		{`[null,null,"t","presence_diff",{"leaves":{"viewers":{"count":0},"users":{"count":2}},"joins":{"viewers":{"count":3},"users":{"count":1}}}]`, 2, true},
		{`["1",null,"t","presence_state",{"viewers":{"count":3},"users":{"count":1}}]`, 0, false},
		{`[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]`, 0, false},
	}
	for _, c := range cases {
		got, ok := diffDelta([]byte(c.frame))
		if got != c.want || ok != c.ok {
			t.Errorf("diffDelta(%s) = %d, %v; want %d, %v", c.frame, got, ok, c.want, c.ok)
		}
	}
}
