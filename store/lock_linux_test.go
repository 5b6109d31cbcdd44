package store

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// holdEnv makes TestLock_holder hold the store it names until its stdin
// closes: the other process of TestLock_sharedReaders.
const holdEnv = "MCE_STORE_TEST_HOLD"

// TestLock_holder is not a test on its own: run by TestLock_sharedReaders
// in a child process, it opens the store in $MCE_STORE_TEST_HOLD
// read-only, says "held", and keeps it until its stdin closes.
func TestLock_holder(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("the other process of TestLock_sharedReaders")
	}
	db, err := Open(dir, quietOpts(Options{ReadOnly: true, NoLockWait: true}))
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("held\n")
	bufio.NewReader(os.Stdin).ReadString('\n')
	db.Close()
}

// TestLock_sharedReaders: readers share a store, in one process and in
// two; a writer is kept out while any reader holds it, and keeps readers
// out while it holds it.
func TestLock_sharedReaders(t *testing.T) {
	db, dir := createStore(t)
	loadFile(t, db, 1, "jan.csv", map[string][]string{"alice": {"1.00", "2.00"}}, nil)
	// A writer holds the store: readers wait, then say it is in use.
	if r, err := Open(dir, quietOpts(Options{ReadOnly: true, NoLockWait: true})); err == nil || !strings.Contains(err.Error(), "in use by another mce process") {
		if r != nil {
			r.Close()
		}
		t.Fatalf("read-only Open while a writer holds the store: %v", err)
	}
	db.Close()

	ro := quietOpts(Options{ReadOnly: true, NoLockWait: true})
	a, err := Open(dir, ro)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir, ro)
	if err != nil {
		t.Fatalf("a second reader in the same process: %v", err)
	}
	// Closing one reader must not drop the other's lock (classic POSIX
	// locks would: they go with any closed descriptor of the file).
	b.Close()
	if w, err := Open(dir, quietOpts(Options{NoLockWait: true})); err == nil {
		w.Close()
		t.Fatal("a writer opened the store while a reader holds it")
	}
	if got := readUser(t, a, "alice", nil); len(got) != 2 {
		t.Errorf("alice: %v", got)
	}

	// A reader in another process, beside this one's.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLock_holder$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "held\n" {
		stdin.Close()
		cmd.Wait()
		t.Fatalf("the other reader did not open the store beside this one's: %q", line)
	}
	a.Close()
	if w, err := Open(dir, quietOpts(Options{NoLockWait: true})); err == nil {
		w.Close()
		t.Error("a writer opened the store while another process reads it")
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the other reader: %v", err)
	}
	w, err := Open(dir, quietOpts(Options{NoLockWait: true}))
	if err != nil {
		t.Fatalf("a writer after every reader closed: %v", err)
	}
	w.Close()
}
