package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// The defaults, then the environment, then the flags: each overrides the one before.
func TestConfigPrecedence(t *testing.T) {
	var out, errOut bytes.Buffer
	cfg, err := parseConfig([]string{"-event-retention", "2h"},
		envOf(map[string]string{"REFRESHD_EVENT_RETENTION": "1h", "REFRESHD_ADDR": "127.0.0.1:9999", "REFRESHD_ISSUER": ""}),
		&out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.EventRetention != 2*time.Hour {
		t.Errorf("event retention %v, want the flag's 2h", cfg.EventRetention)
	}
	if cfg.Addr != "127.0.0.1:9999" {
		t.Errorf("addr %q, want the environment's", cfg.Addr)
	}
	if cfg.Issuer != "refreshd" || cfg.DataDir != "./.data" || cfg.LogFormat != "text" {
		t.Errorf("defaults: issuer %q, data dir %q, log format %q (an empty variable counts as unset)", cfg.Issuer, cfg.DataDir, cfg.LogFormat)
	}
}

// What refreshd cannot use stops it, naming the culprit: a positional argument,
// an environment value or a flag that does not parse.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"serve", "-addr", "127.0.0.1:1"}, nil, `unexpected argument "serve"`},
		{[]string{"-addr", "127.0.0.1:1", "extra"}, nil, `unexpected argument "extra"`},
		{nil, map[string]string{"REFRESHD_EVENT_RETENTION": "banana"}, `REFRESHD_EVENT_RETENTION="banana": not a duration`},
		{nil, map[string]string{"REFRESHD_LOG_LEVEL": "loud"}, `REFRESHD_LOG_LEVEL="loud": not a level`},
		{nil, map[string]string{"REFRESHD_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"}, `REFRESHD_TRUSTED_PROXIES="10.0.0.0/8,nonsense": "nonsense" is not a CIDR`},
		{[]string{"-log-format", "xml"}, nil, `must be one of text, json`},
		{[]string{"-event-retention", "-5m"}, nil, `must be positive`},
		{[]string{"-no-such-flag"}, nil, `flag provided but not defined: -no-such-flag`},
	} {
		var out, errOut bytes.Buffer
		_, err := parseConfig(tc.args, envOf(tc.env), &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %q env %v: error %v, want one containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// -h lists every flag with its environment variable and default, and the
// README's configuration table names every one of them too.
func TestHelpAndReadmeListEverySetting(t *testing.T) {
	var out, errOut bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, envOf(nil), &out, &errOut); err != errDone {
		t.Fatalf("-h: %v", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, s := range settings(new(config)) {
		line := ""
		for _, l := range strings.Split(help, "\n") {
			if strings.HasPrefix(l, "-"+s.flag+" ") {
				line = l
			}
		}
		if line == "" || !strings.Contains(line, s.env) || (s.def != "" && !strings.Contains(line, s.def)) {
			t.Errorf("-h does not list -%s with %s and its default %q:\n%s", s.flag, s.env, s.def, help)
		}
		if !strings.Contains(string(readme), "`-"+s.flag+"` | `"+s.env+"`") {
			t.Errorf("README.md's configuration table lacks the row for -%s (%s)", s.flag, s.env)
		}
	}
	for _, want := range []string{"-version", "-h"} {
		if !strings.Contains(help, "\n"+want) {
			t.Errorf("-h does not list %s", want)
		}
	}
}
