// Inert replica of the Go DLL downloader of the early Operation RestyLink waves.
//
// The real DLL was side-loaded, fetched a Cobalt Strike stager over HTTPS with a browser user agent
// and ran it. This replica keeps only the strings and structure an analyst looks for (function
// names, the stage URL, the user agent, a fallback address, a c-shared export): every function only
// builds strings. It imports no networking, process or syscall package and runs nothing.
package main

import "C"

import (
	"strings"

	"github.com/restylink-replica/beaconcfg"
)

// The stage address the downloader fetched (a Cobalt Strike x86 checksum8 URI), its fallback on a
// documentation (TEST-NET-1) address, and the user agent it sent.
const (
	stageURL    = "https://cdn.restylink.invalid/rLe9"
	fallbackURL = "http://192.0.2.47:8080/rLf9"
	userAgent   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.110 Safari/537.36"
	stageConfig = "host=cdn.restylink.invalid;port=443;uri=/rLe9;sleep=60000;jitter=20;ua=" + userAgent
)

// fetchStage returns the request line the real downloader sent; nothing is sent here.
// (noinline keeps each function's name in the pclntab, as in the real, larger, DLL.)
//
//go:noinline
func fetchStage(url string) string {
	var request strings.Builder
	request.WriteString("GET ")
	request.WriteString(url)
	request.WriteString(" HTTP/1.1\r\nUser-Agent: ")
	request.WriteString(userAgent)
	request.WriteString("\r\n\r\n")
	return request.String()
}

// decodeConfig parses the embedded stage configuration.
//
//go:noinline
func decodeConfig() beaconcfg.Config {
	return beaconcfg.Decode(stageConfig)
}

// sideloadEntry is the export the side-loading host called; here it only measures strings.
//
//export sideloadEntry
func sideloadEntry() C.int {
	cfg := decodeConfig()
	primary := fetchStage(cfg.StageURL())
	fallback := fetchStage(fallbackURL)
	if cfg.Host == "" {
		return C.int(len(fetchStage(stageURL)))
	}
	return C.int(len(primary) + len(fallback))
}

func main() {}
