// Package prefetch hints the CPU to load memory that will be read soon:
// the grouped rows of a cluster (engine/inram) and partition's sort
// buffers are read in user order, which is random order in memory, and
// each read would otherwise wait for its cache miss alone.
package prefetch
