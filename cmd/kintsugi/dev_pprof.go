package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// pprofServer returns a listener serving the runtime profiles under
// /debug/pprof/ on addr. Profiles expose the process's internals and cost
// CPU to take, so it is opt-in and must bind a loopback address.
func pprofServer(addr string, logger *slog.Logger) (*server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usageErr("--pprof %s: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, usageErr("--pprof %s: want a loopback address such as 127.0.0.1:6060", addr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv, err := newServer("pprof", addr, mux, logger)
	if err != nil {
		return nil, usageErr("--pprof: %v", err)
	}
	return srv, nil
}

// withPprof adds the profile server to servers and its address to the
// ready line's kv when addr is set (the --pprof flag of storagenode and
// gateway); with addr empty it returns them unchanged.
func withPprof(addr string, logger *slog.Logger, servers []*server, kv []string) ([]*server, []string, error) {
	if addr == "" {
		return servers, kv, nil
	}
	psrv, err := pprofServer(addr, logger)
	if err != nil {
		return servers, kv, err
	}
	return append(servers, psrv), append(kv, "pprof", psrv.Addr()), nil
}
