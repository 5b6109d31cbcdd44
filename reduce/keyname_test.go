package reduce

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/store"
)

// TestSectionOutputs: each output's key column is named after the name
// the store kept for its file's user column, across files only when the
// files agree; a store that kept none keeps "user" unless --key-name
// input reads the header again; times are local when every file of the
// output had no zone, and never under --tz.
func TestSectionOutputs(t *testing.T) {
	file := func(name, header string, local bool) store.FileEntry {
		return store.FileEntry{Name: name, Path: "/in/" + name, UserHeader: header, LocalTimes: local}
	}
	jan := file("jan.csv", "issuer_id", true)
	feb := file("feb.csv", "ISSUER_ID", true)
	mar := file("mar.csv", "emisor", false)
	old := file("old.csv", "", false) // a store made before the names were kept
	builtin := feature.Invoice()
	withMap := builtin
	withMap.Map = func(*feature.Row, feature.Params) ([]byte, bool) { return nil, true }
	named := builtin
	named.KeyName = "rfc"
	headers := func(path string) (string, error) {
		if path == "/in/old.csv" {
			return "Issuer", nil
		}
		return "", errors.New("no such file")
	}

	f := func(name string, files []store.FileEntry, spec *feature.Spec, across bool, out Outputs, want string) {
		t.Helper()
		if out.UserHeader == nil {
			out.UserHeader = headers
		}
		outs, err := sectionOutputs(files, spec, across, out)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		}
		for _, o := range outs {
			got += fmt.Sprintf("%q local=%v; ", o.keyName, o.local)
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
	files := []store.FileEntry{jan, feb, mar}
	f("per file", files, &builtin, false, Outputs{},
		`"issuer_id" local=true; "ISSUER_ID" local=true; "emisor" local=false; `)
	f("across, names that differ", files, &builtin, true, Outputs{}, `"" local=false; `)
	f("across, names that agree", []store.FileEntry{jan, feb}, &builtin, true, Outputs{}, `"issuer_id" local=true; `)
	f("--tz", files, &builtin, false, Outputs{TZ: "America/Mexico_City"},
		`"issuer_id" local=false; "ISSUER_ID" local=false; "emisor" local=false; `)
	f("--key-name", files, &builtin, false, Outputs{Options: output.Options{KeyName: "rfc"}},
		`"rfc" local=true; "rfc" local=true; "rfc" local=false; `)
	f("Spec.KeyName", files, &named, false, Outputs{}, `"" local=true; "" local=true; "" local=false; `)
	f("a Spec with a Map", []store.FileEntry{jan}, &withMap, false, Outputs{}, `"user" local=true; `)
	f("a Spec with a Map, --key-name input", []store.FileEntry{jan}, &withMap, false,
		Outputs{Options: output.Options{KeyFromInput: true}}, `"issuer_id" local=true; `)
	f("an old store", []store.FileEntry{old}, &builtin, false, Outputs{}, `"" local=false; `)
	f("an old store, --key-name input", []store.FileEntry{old, jan}, &builtin, false,
		Outputs{Options: output.Options{KeyFromInput: true}}, `"Issuer" local=false; "issuer_id" local=true; `)
	f("an old store whose input is gone, --key-name input", []store.FileEntry{file("gone.csv", "", false)}, &builtin, false,
		Outputs{Options: output.Options{KeyFromInput: true}}, "error: --key-name input: the name of the user column of gone.csv")
	f("across, names that differ, --key-name input", files, &builtin, true,
		Outputs{Options: output.Options{KeyFromInput: true}}, "error: --key-name input: the files name their user column differently")
}
