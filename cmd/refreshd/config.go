package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"refreshd/impl"
)

// config is everything refreshd is told at start-up.
type config struct {
	Addr            string
	Database        string
	DataDir         string
	APIKey          string
	Issuer          string
	TrustedProxies  []*net.IPNet
	EventRetention  time.Duration
	LogLevel        slog.Level
	LogFormat       string
	RequestLogLevel slog.Level
	MetricsAddr     string
	BatchWorkers    int
	// Limits on each client, so that slow or abusive ones cannot hold the server.
	HeaderTimeout  time.Duration
	BodyTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	MaxBodyBytes   int
}

// setting is one line of the configuration: a flag, the environment variable it
// falls back to, its default and what it means. parse checks a value and stores
// it in the config; the same parser serves the default, the variable and the flag.
type setting struct {
	flag, env, def, arg, help string
	parse                     func(string) error
}

// settings is the table of every flag. To add one, add a field to config and a
// line here: -h, the environment fallback and the errors come with it.
func settings(c *config) []setting {
	return []setting{
		{"addr", "REFRESHD_ADDR", "127.0.0.1:9011", "host:port", "listen address of the API (FusionAuth's port)", text(&c.Addr)},
		{"database", "DATABASE_URL", "", "url", "PostgreSQL URL, e.g. postgres://u:p@host/db?sslmode=disable; empty starts a private cluster in -data-dir", text(&c.Database)},
		{"data-dir", "REFRESHD_DATA_DIR", "./.data", "dir", "home of the private PostgreSQL cluster", text(&c.DataDir)},
		{"api-key", "REFRESHD_API_KEY", "", "key", "bootstrap API key; with none configured and none stored, one is made and printed once", text(&c.APIKey)},
		{"issuer", "REFRESHD_ISSUER", "refreshd", "text", "iss claim of access tokens", text(&c.Issuer)},
		{"trusted-proxies", "REFRESHD_TRUSTED_PROXIES", "", "cidrs", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the caller", cidrs(&c.TrustedProxies)},
		{"event-retention", "REFRESHD_EVENT_RETENTION", "720h", "duration", "how long delivered events are kept", duration(&c.EventRetention)},
		{"log-level", "REFRESHD_LOG_LEVEL", "info", "level", "least severe level logged: debug, info, warn or error", level(&c.LogLevel)},
		{"log-format", "REFRESHD_LOG_FORMAT", "text", "format", "text (logfmt-like key=value) or json (one object per line)", oneOf(&c.LogFormat, "text", "json")},
		{"request-log-level", "REFRESHD_REQUEST_LOG_LEVEL", "info", "level", "level of the one line logged per request (route template, status, duration; never the query or body)", level(&c.RequestLogLevel)},
		{"metrics-addr", "REFRESHD_METRICS_ADDR", "", "host:port", "serve /metrics on this address instead of on -addr", text(&c.MetricsAddr)},
		{"db-batch-workers", "REFRESHD_DB_BATCH_WORKERS", "2", "count", "transactions in flight per kind of batched write (revocations by value, by user, exchanges); about the database's cores", positive(&c.BatchWorkers)},
		{"header-timeout", "REFRESHD_HEADER_TIMEOUT", "10s", "duration", "time to receive a request's headers; then the connection is closed", duration(&c.HeaderTimeout)},
		{"body-timeout", "REFRESHD_BODY_TIMEOUT", "20s", "duration", "time to receive a request's body, after its headers; then 408 and the connection is closed", duration(&c.BodyTimeout)},
		{"write-timeout", "REFRESHD_WRITE_TIMEOUT", "60s", "duration", "time from a request's headers to the end of its answer", duration(&c.WriteTimeout)},
		{"idle-timeout", "REFRESHD_IDLE_TIMEOUT", "2m", "duration", "how long an idle keep-alive connection stays open", duration(&c.IdleTimeout)},
		{"max-header-bytes", "REFRESHD_MAX_HEADER_BYTES", "65536", "bytes", "largest request line and headers; beyond, 431", positive(&c.MaxHeaderBytes)},
		{"max-body-bytes", "REFRESHD_MAX_BODY_BYTES", "8388608", "bytes", "largest request body; beyond, 400 [tooLarge]", positive(&c.MaxBodyBytes)},
	}
}

// errDone means the command did what it was asked (-h, -version) and serves nothing.
var errDone = errors.New("done")

// parseConfig reads the defaults, then the environment, then the flags. An
// empty environment variable counts as unset.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) (*config, error) {
	c := new(config)
	table := settings(c)
	fs := flag.NewFlagSet("refreshd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, s := range table {
		if err := s.parse(s.def); err != nil {
			return nil, fmt.Errorf("default of -%s: %w", s.flag, err)
		}
		if v, ok := lookupEnv(s.env); ok && v != "" {
			if err := s.parse(v); err != nil {
				return nil, fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
		}
		fs.Var(flagValue(s.parse), s.flag, s.help)
	}
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, table)
			return nil, errDone
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: refreshd takes flags only", fs.Arg(0))
	}
	if *version {
		fmt.Fprintln(stdout, versionString())
		return nil, errDone
	}
	return c, nil
}

func usage(w io.Writer, table []setting) {
	fmt.Fprintf(w, "Usage: refreshd [flags]\n\n"+
		"Serves the FusionAuth-compatible refresh-token API. Each flag falls back to its\n"+
		"environment variable (an empty one counts as unset), then to its default.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "flag\tenvironment\tdefault\t")
	for _, s := range table {
		def := s.def
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "-%s %s\t%s\t%s\t%s\n", s.flag, s.arg, s.env, def, s.help)
	}
	fmt.Fprintln(tw, "-version\t\t\tprint the version and exit")
	fmt.Fprintln(tw, "-h\t\t\tthis help")
	tw.Flush()
}

// logger builds the process's logger: text or JSON lines on w, at the
// configured level, each naming the request it was logged for.
func (c *config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(impl.WithRequestID(h))
}

// versionString is the module version and the VCS revision the binary was built
// from, as the Go toolchain recorded them.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "refreshd (no build information)"
	}
	out := "refreshd " + bi.Main.Version
	var rev, when, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		out += ", revision unknown (built without VCS information)"
	} else {
		out += ", revision " + rev
		if when != "" {
			out += " of " + when
		}
		if modified == "true" {
			out += " with uncommitted changes"
		}
	}
	return out + ", " + bi.GoVersion
}

// flagValue adapts a parser to flag.Value.
type flagValue func(string) error

func (f flagValue) Set(v string) error { return f(v) }
func (f flagValue) String() string     { return "" }

func text(dst *string) func(string) error {
	return func(v string) error { *dst = v; return nil }
}

func duration(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration like 720h or 30m")
		}
		if d <= 0 {
			return fmt.Errorf("must be positive")
		}
		*dst = d
		return nil
	}
}

func level(dst *slog.Level) func(string) error {
	return func(v string) error {
		if err := dst.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("not a level: debug, info, warn or error")
		}
		return nil
	}
}

func oneOf(dst *string, allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				*dst = v
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func positive(dst *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("not a positive whole number")
		}
		*dst = n
		return nil
	}
}

func cidrs(dst *[]*net.IPNet) func(string) error {
	return func(list string) error {
		var out []*net.IPNet
		for _, item := range strings.Split(list, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			_, n, err := net.ParseCIDR(item)
			if err != nil {
				return fmt.Errorf("%q is not a CIDR like 10.0.0.0/8", item)
			}
			out = append(out, n)
		}
		*dst = out
		return nil
	}
}
