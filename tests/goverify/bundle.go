package main

import "golang.org/x/mod/sumdb/note"

func cmdBundle(r *Report, keys note.Verifiers, path string) {
	fatal("bundle: not yet")
}
