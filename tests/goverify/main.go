// Command goverify checks auditledger's checkpoints, proofs, tiles and evidence bundles
// with code that shares nothing with the ledger: golang.org/x/mod/sumdb/note for signed
// notes, github.com/transparency-dev/merkle for RFC 9162 proofs, golang.org/x/mod/sumdb/tlog
// for reading the log as C2SP tlog-tiles, and the Go standard library.
//
// It exists so that a bug shared by the ledger and its own verifier (both Python) cannot
// hide: the test suite feeds it what the API serves and what bundles hold (docs/tlog.md).
//
// Every subcommand prints one JSON report on stdout, shaped as `auditledger verify --json`:
//
//	{"ok": bool, "controllers": {ID: {...}}, "problems": [{"controller", "event_id", "index", "problem", "detail"}]}
//
// and exits 0 when everything verifies, 1 when a problem was found, 2 when it could not
// run at all (bad arguments, unreadable input, a server that does not answer).
// Problem names are those of `auditledger verify` where the two overlap.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

const usage = `usage: goverify COMMAND [flags] ARGS

  checkpoint  --log-key VKEY --controller C NOTE_FILE
  inclusion   --log-key VKEY --controller C PROOF_JSON   (the API's /proofs/inclusion answer)
  consistency --log-key VKEY --controller C --old NOTE_FILE --new NOTE_FILE PROOF_JSON
  tlog        --log-key VKEY --controller C --url URL [--api-key KEY] [--old NOTE_FILE] [--index I]...
  bundle      --log-key VKEY BUNDLE_ZIP

The API key may also come from AUDITLEDGER_API_KEY. Exit 0: verified; 1: problems; 2: could not run.`

// Problem is one finding, named as auditledger's verifier names it.
type Problem struct {
	Controller string  `json:"controller"`
	EventID    *string `json:"event_id"`
	Index      *int64  `json:"index"`
	Problem    string  `json:"problem"`
	Detail     string  `json:"detail"`
}

// Report is what every subcommand prints.
type Report struct {
	OK          bool                      `json:"ok"`
	Controllers map[string]map[string]any `json:"controllers"`
	Problems    []Problem                 `json:"problems"`
}

func newReport() *Report {
	return &Report{Controllers: map[string]map[string]any{}, Problems: []Problem{}}
}

func (r *Report) add(controller, problem, detail string) {
	r.Problems = append(r.Problems, Problem{Controller: controller, Problem: problem, Detail: detail})
}

func (r *Report) addAt(controller, problem string, eventID string, index int64, detail string) {
	p := Problem{Controller: controller, Problem: problem, Detail: detail}
	if eventID != "" {
		p.EventID = &eventID
	}
	p.Index = &index
	r.Problems = append(r.Problems, p)
}

// fatal reports that the check could not run at all (exit 2), on one line.
func fatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "goverify: "+format+"\n", args...)
	os.Exit(2)
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fatal("%s", usage)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	logKey := fs.String("log-key", "", "the log's signed-note verifier key (pin it)")
	controller := fs.String("controller", "", "controller id; the log's origin is auditledger/<id>")
	oldNote := fs.String("old", "", "an older signed checkpoint note (file)")
	newNote := fs.String("new", "", "the newer signed checkpoint note (file)")
	url := fs.String("url", "", "the ledger's base URL, e.g. http://127.0.0.1:8000")
	apiKey := fs.String("api-key", os.Getenv("AUDITLEDGER_API_KEY"), "an auditor or admin API key")
	var indexes multiFlag
	fs.Var(&indexes, "index", "a leaf index to prove included from tiles (repeatable)")
	if err := fs.Parse(args); err != nil {
		fatal("%v", err)
	}
	if *logKey == "" {
		fatal("--log-key is required: pin the key you trust")
	}
	keys, err := newKeys(*logKey)
	if err != nil {
		fatal("--log-key: %v", err)
	}
	needController := func() {
		if *controller == "" {
			fatal("--controller is required")
		}
	}
	rest := fs.Args()
	report := newReport()
	switch cmd {
	case "checkpoint":
		needController()
		cmdCheckpoint(report, keys, *controller, one(rest))
	case "inclusion":
		needController()
		cmdInclusion(report, keys, *controller, one(rest))
	case "consistency":
		needController()
		if *oldNote == "" || *newNote == "" {
			fatal("consistency needs --old and --new")
		}
		cmdConsistency(report, keys, *controller, *oldNote, *newNote, one(rest))
	case "tlog":
		needController()
		if *url == "" {
			fatal("tlog needs --url")
		}
		cmdTlog(report, keys, *controller, *url, *apiKey, *oldNote, indexes)
	case "bundle":
		cmdBundle(report, keys, one(rest))
	default:
		fatal("unknown command %q\n%s", cmd, usage)
	}
	report.OK = len(report.Problems) == 0
	out, _ := json.Marshal(report)
	fmt.Println(string(out))
	if !report.OK {
		os.Exit(1)
	}
}

func one(rest []string) string {
	if len(rest) != 1 {
		fatal("expected one input file, got %d", len(rest))
	}
	return rest[0]
}

func readFile(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fatal("%v", err)
	}
	return data
}
