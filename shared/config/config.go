// Package config reads typed settings from environment variables with documented defaults.
//
// Only a service's run function touches the environment: it passes os.Getenv (or a map's
// lookup in tests) as a Getenv, and everything below receives a typed config struct. A Reader
// collects every problem instead of stopping at the first, so a misconfigured service reports
// all bad settings in one start-up error:
//
//	r := config.New(getenv)
//	cfg := Config{
//		Addr:    r.String("USERS_HTTP_ADDR", "127.0.0.1:8081"),
//		DBURL:   r.Required("USERS_DATABASE_URL"),
//		Timeout: r.Duration("USERS_SHUTDOWN_TIMEOUT", 10*time.Second),
//	}
//	if err := r.Err(); err != nil {
//		return fmt.Errorf("config: %w", err)
//	}
//
// An empty variable counts as unset, so `X= ./service` falls back to the default.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Getenv looks up an environment variable and returns "" when it is not set; os.Getenv
// satisfies it.
type Getenv func(string) string

// MapGetenv returns a Getenv backed by m, for tests.
func MapGetenv(m map[string]string) Getenv {
	return func(k string) string { return m[k] }
}

// Reader reads typed values through a Getenv and collects parse errors; check Err once after
// reading every value. A Reader is not safe for concurrent use.
type Reader struct {
	getenv Getenv
	errs   []error
}

// New returns a Reader that looks variables up with getenv. A nil getenv reads nothing, so
// every value takes its default.
func New(getenv Getenv) *Reader {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &Reader{getenv: getenv}
}

func (r *Reader) lookup(key string) (string, bool) {
	v := strings.TrimSpace(r.getenv(key))
	return v, v != ""
}

func (r *Reader) fail(key, raw, want string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: want %s: %w", key, raw, want, err))
}

// String returns the variable's value, or def when it is unset or empty.
func (r *Reader) String(key, def string) string {
	if v, ok := r.lookup(key); ok {
		return v
	}
	return def
}

// Required returns the variable's value and records an error when it is unset or empty.
func (r *Reader) Required(key string) string {
	v, ok := r.lookup(key)
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("%s: required but not set", key))
	}
	return v
}

// Int returns the variable parsed as a base-10 integer, or def when it is unset. A value that
// does not parse records an error and returns def.
func (r *Reader) Int(key string, def int) int {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.fail(key, v, "an integer", errors.Unwrap(err))
		return def
	}
	return n
}

// Duration returns the variable parsed by time.ParseDuration ("500ms", "2m"), or def when it
// is unset. A value that does not parse, or is negative, records an error and returns def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	if err != nil {
		r.fail(key, v, `a duration such as "500ms" or "2m"`, err)
		return def
	}
	return d
}

// Bool returns the variable parsed by strconv.ParseBool ("true", "1", "false", "0", …), or
// def when it is unset. A value that does not parse records an error and returns def.
func (r *Reader) Bool(key string, def bool) bool {
	v, ok := r.lookup(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(key, v, "true or false", errors.Unwrap(err))
		return def
	}
	return b
}

// Err returns every error recorded so far joined into one (nil when there are none).
func (r *Reader) Err() error {
	return errors.Join(r.errs...)
}

// userinfoPassword matches the password of URL userinfo inside arbitrary text
// ("scheme://user:secret@host"), for strings that url.Parse rejects, such as host lists.
var userinfoPassword = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*@`)

// Redact returns s with any URL password replaced by "***", for logging connection strings:
// "postgres://users:secret@127.0.0.1/users" becomes "postgres://users:***@127.0.0.1/users".
// Query parameters named password (or ending in "password") are masked too. Strings without
// a password are returned unchanged.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return userinfoPassword.ReplaceAllString(s, "${1}***@")
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redactedMark)
	}
	q := u.Query()
	masked := false
	for k := range q {
		if strings.HasSuffix(strings.ToLower(k), "password") {
			q.Set(k, redactedMark)
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return strings.ReplaceAll(u.String(), redactedMark, "***")
}

// redactedMark stands in for "***" while the URL is re-encoded, because url.URL would
// escape "*"; it contains only characters that no part of a URL escapes.
const redactedMark = "polyshop-redacted-e3b0c442"
