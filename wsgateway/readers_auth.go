package wsgateway

import "unicode/utf8"

// validTopic reports whether topic may be read over HTTP: 1 to MaxTopicBytes bytes of UTF-8.
// Every HTTP reader then asks authorizeRead (access.go) before it reads a count.
func (g *Gateway) validTopic(topic string) bool {
	return topic != "" && len(topic) <= g.cfg.MaxTopicBytes && utf8.ValidString(topic)
}
