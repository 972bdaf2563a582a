// Package beaconcfg parses the key=value stage configuration of the RestyLink downloader replica.
//
// It stands for the small third-party-looking module real Go loaders pull in: the build records it
// as a dependency (with version and checksum) and its functions show up as non-standard-library
// functions. It only parses text; it opens nothing.
package beaconcfg

import (
	"strconv"
	"strings"
)

// Config is the decoded stage configuration.
type Config struct {
	Host      string
	Port      int
	URI       string
	SleepMs   int
	Jitter    int
	UserAgent string
}

// Decode reads "key=value;key=value" text.
func Decode(text string) Config {
	var cfg Config
	for _, field := range strings.Split(text, ";") {
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		switch key {
		case "host":
			cfg.Host = value
		case "port":
			cfg.Port, _ = strconv.Atoi(value)
		case "uri":
			cfg.URI = value
		case "sleep":
			cfg.SleepMs, _ = strconv.Atoi(value)
		case "jitter":
			cfg.Jitter, _ = strconv.Atoi(value)
		case "ua":
			cfg.UserAgent = value
		}
	}
	return cfg
}

// StageURL is the address the real downloader fetched its stager from.
func (c *Config) StageURL() string {
	scheme := "https"
	if c.Port == 80 {
		scheme = "http"
	}
	return scheme + "://" + c.Host + ":" + strconv.Itoa(c.Port) + c.URI
}
