// Package layering holds the module's dependency rules: which of its
// packages may import which, and where the heavy libraries (badger, gin)
// may be used, as DESIGN.md's package list lays them out.
//
// It has no code. Its test reads the imports of every Go file of the
// module, tests included and whatever their build tags, and checks them
// against one table of rules, so a rule is written once, next to all the
// others, instead of in a test of each package. A new top-level package
// needs a place in that table before the test passes.
//
// It must never be imported and must never grow code for other packages
// to use.
package layering
