package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// hostPort is a parsed host:port flag value. An empty host means every
// interface.
type hostPort struct {
	host string
	port int
}

func (h hostPort) String() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

// unspecified reports whether h binds every interface (empty, 0.0.0.0 or ::).
func (h hostPort) unspecified() bool {
	if h.host == "" {
		return true
	}
	ip := net.ParseIP(h.host)
	return ip != nil && ip.IsUnspecified()
}

// loopback reports whether h binds only a loopback address (127.0.0.0/8,
// ::1 or the name localhost), which no other machine can reach.
func (h hostPort) loopback() bool {
	if strings.EqualFold(h.host, "localhost") {
		return true
	}
	ip := net.ParseIP(h.host)
	return ip != nil && ip.IsLoopback()
}

// parseHostPort parses the value of the flag called name, as host:port,
// :port (every interface), or a bare port number, which keeps defaultHost:
// "--bind 7969" must not turn a loopback default into every interface.
func parseHostPort(name, s, defaultHost string) (hostPort, error) {
	if s == "" {
		return hostPort{}, fmt.Errorf("--%s is empty, want host:port", name)
	}
	if _, err := strconv.Atoi(s); err == nil {
		s = net.JoinHostPort(defaultHost, s)
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return hostPort{}, fmt.Errorf("--%s %q: want host:port", name, s)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return hostPort{}, fmt.Errorf("--%s %q: port must be a number from 0 to 65535", name, s)
	}
	return hostPort{host: host, port: port}, nil
}

// advertiseIP picks the address other nodes should use to reach a node bound
// to every interface: the first private (RFC 1918 / RFC 4193) address of an
// interface that is up, else its first other global unicast address.
func advertiseIP() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	var fallback string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			if ipn.IP.IsPrivate() {
				return ipn.IP.String(), nil
			}
			if fallback == "" {
				fallback = ipn.IP.String()
			}
		}
	}
	if fallback == "" {
		return "", errors.New("no interface has a usable address; set --advertise")
	}
	return fallback, nil
}

// defaultNodeName is the host name, with -PORT appended when the gossip
// port is not the default one, so several agents on one machine get
// distinct names without --name.
func defaultNodeName(bindPort int) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "headcount"
	}
	if bindPort != defaultGossipPort {
		h += "-" + strconv.Itoa(bindPort)
	}
	return h
}

// checkOrigins validates the values of --allowed-origins (or any flag of
// browser origins, named by flagName): "*", or scheme://host[:port] as a
// browser sends it in the Origin header. A value without a scheme
// (example.com) would never match any browser, so it is refused at start
// instead of failing every connection later.
func checkOrigins(flagName string, origins []string) error {
	for _, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
			return fmt.Errorf("--%s %q: want scheme://host[:port] as the browser sends it (e.g. https://%s), or *", flagName, o, strings.TrimPrefix(o, "//"))
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("--%s %q: an origin is scheme://host[:port] only, without path, query or user", flagName, o)
		}
	}
	return nil
}
