package conformance

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Marks of the three outcomes in the human report.
const (
	markPassed  = "✓"
	markFailed  = "✗"
	markSkipped = "–"
)

// TextReporter writes the human report: a header, a line per case as results
// arrive, then a recap of every failure and the closing count line. The live
// output of a run and WriteText of its report are the same text.
type TextReporter struct {
	w     io.Writer
	width int
	err   error
}

// NewTextReporter writes to w. The first write error is kept and returned by Finish.
func NewTextReporter(w io.Writer) *TextReporter { return &TextReporter{w: w} }

func (t *TextReporter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

// Start writes the header and sizes the id column for cases.
func (t *TextReporter) Start(target string, profile Profile, cases []Case) {
	t.width = 0
	for _, c := range cases {
		t.width = max(t.width, len(c.ID))
	}
	t.printf("conformance: %s, profile %s, %d cases\n", target, profile, len(cases))
}

// Case writes the live line of one result.
func (t *TextReporter) Case(r Result) {
	switch r.Status {
	case Passed:
		t.printf("%s %-*s  %s\n", markPassed, t.width, r.ID, r.Title)
	case Failed:
		t.printf("%s %-*s  %s\n", markFailed, t.width, r.ID, r.Title)
	default:
		t.printf("%s %-*s  %s (skipped: %s)\n", markSkipped, t.width, r.ID, r.Title, r.SkipReason)
	}
}

// Finish writes the recap of failures and the closing line
// "N passed, N failed, N skipped", and returns the first write error.
func (t *TextReporter) Finish(rep *Report) error {
	passed, failed, skipped := rep.Counts()
	if failed > 0 {
		noun := "failures"
		if failed == 1 {
			noun = "failure"
		}
		t.printf("\n%d %s:\n", failed, noun)
		for _, r := range rep.Results {
			if r.Status == Failed {
				t.recap(r)
			}
		}
	}
	t.printf("\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return t.err
}

const recapWidth = 100

func (t *TextReporter) recap(r Result) {
	t.printf("\n%s %s — %s\n", markFailed, r.ID, r.Title)
	for i, d := range r.Documented {
		label := "documented"
		if i > 0 {
			label = ""
		}
		t.field(label, r.Source+": \""+d+"\"")
	}
	t.field("requirement", r.Requirement)
	f := r.Failure
	if f == nil {
		return
	}
	t.field("step", f.Step)
	t.field("expected", f.Expected)
	t.field("actual", f.Actual)
	if f.Kind == KindSchema {
		t.field("schema", f.SchemaPath)
	}
	if f.Note != "" {
		t.field("note", f.Note)
	}
}

// field writes "  label        text", wrapping text under itself.
func (t *TextReporter) field(label, text string) {
	const indent = "  "
	const labelWidth = 13
	lines := wrap(text, recapWidth-len(indent)-labelWidth)
	for i, line := range lines {
		if i == 0 {
			t.printf("%s%-*s%s\n", indent, labelWidth, label, line)
		} else {
			t.printf("%s%-*s%s\n", indent, labelWidth, "", line)
		}
	}
}

// wrap breaks text into lines of at most width runes at spaces; a longer word
// stays whole on its own line.
func wrap(text string, width int) []string {
	words := strings.Fields(text)
	if len(words) == 0 {
		return []string{""}
	}
	var lines []string
	line := words[0]
	for _, w := range words[1:] {
		if len([]rune(line))+1+len([]rune(w)) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		line += " " + w
	}
	return append(lines, line)
}

// WriteText writes the whole human report of a finished run: what the live
// output of that run was.
func WriteText(w io.Writer, rep *Report) error {
	t := NewTextReporter(w)
	cases := make([]Case, len(rep.Results))
	for i, r := range rep.Results {
		cases[i] = Case{ID: r.ID}
	}
	t.Start(rep.Target, rep.Profile, cases)
	for _, r := range rep.Results {
		t.Case(r)
	}
	return t.Finish(rep)
}

// JUnit XML, as read by CI systems: one testsuite per API, one testcase per case.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
	Skipped   *junitSkipped `xml:"skipped"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML: one testsuite per API (the first
// segment of the case ids), one testcase per case, named by its id.
func WriteJUnit(w io.Writer, rep *Report) error {
	out := junitSuites{Name: "conformance"}
	var total time.Duration
	index := map[string]int{}
	for _, r := range rep.Results {
		api, _, _ := strings.Cut(r.ID, "/")
		i, ok := index[api]
		if !ok {
			i = len(out.Suites)
			index[api] = i
			out.Suites = append(out.Suites, junitSuite{Name: api, Properties: []junitProperty{
				{"target", rep.Target}, {"profile", string(rep.Profile)}}})
		}
		s := &out.Suites[i]
		c := junitCase{Name: r.ID, Classname: "conformance." + api, Time: seconds(r.Duration)}
		switch r.Status {
		case Failed:
			s.Failures++
			c.Failure = &junitFailure{Type: KindBehaviour, Text: failureText(r)}
			if r.Failure != nil {
				c.Failure.Message = "expected " + r.Failure.Expected + "; got " + r.Failure.Actual
				if r.Failure.Kind != "" {
					c.Failure.Type = r.Failure.Kind
				}
			}
		case Skipped:
			s.Skipped++
			c.Skipped = &junitSkipped{Message: r.SkipReason}
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
		total += r.Duration
	}
	for i := range out.Suites {
		var d time.Duration
		for _, r := range rep.Results {
			if api, _, _ := strings.Cut(r.ID, "/"); api == out.Suites[i].Name {
				d += r.Duration
			}
		}
		out.Suites[i].Time = seconds(d)
		out.Tests += out.Suites[i].Tests
		out.Failures += out.Suites[i].Failures
		out.Skipped += out.Suites[i].Skipped
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func failureText(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "title: %s\n", r.Title)
	for _, d := range r.Documented {
		fmt.Fprintf(&b, "documented: %s: %q\n", r.Source, d)
	}
	fmt.Fprintf(&b, "requirement: %s\n", r.Requirement)
	if f := r.Failure; f != nil {
		fmt.Fprintf(&b, "step: %s\nexpected: %s\nactual: %s\n", f.Step, f.Expected, f.Actual)
		if f.Kind == KindSchema {
			fmt.Fprintf(&b, "schema: %s\n", f.SchemaPath)
		}
		if f.Note != "" {
			fmt.Fprintf(&b, "note: %s\n", f.Note)
		}
	}
	return b.String()
}

type jsonReport struct {
	Target  string       `json:"target"`
	Profile Profile      `json:"profile"`
	Passed  int          `json:"passed"`
	Failed  int          `json:"failed"`
	Skipped int          `json:"skipped"`
	Cases   []jsonResult `json:"cases"`
}

type jsonResult struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Profile     Profile  `json:"profile"`
	Source      string   `json:"source"`
	Documented  []string `json:"documented"`
	Requirement string   `json:"requirement"`
	Status      Status   `json:"status"`
	DurationMs  int64    `json:"durationMs"`
	Failure     *Failure `json:"failure,omitempty"`
	SkipReason  string   `json:"skipReason,omitempty"`
}

// WriteJSON writes the report as one indented JSON document: the counts and,
// per case, its declaration, outcome and structured failure.
func WriteJSON(w io.Writer, rep *Report) error {
	out := jsonReport{Target: rep.Target, Profile: rep.Profile, Cases: []jsonResult{}}
	out.Passed, out.Failed, out.Skipped = rep.Counts()
	for _, r := range rep.Results {
		out.Cases = append(out.Cases, jsonResult{ID: r.ID, Title: r.Title, Profile: r.Profile, Source: r.Source,
			Documented: r.Documented, Requirement: r.Requirement, Status: r.Status,
			DurationMs: r.Duration.Milliseconds(), Failure: r.Failure, SkipReason: r.SkipReason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
