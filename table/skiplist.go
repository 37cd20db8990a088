package table

import "bytes"

// maxHeight bounds skiplist towers. With a branching factor of 4, 16 levels
// index about 4^16 (4 billion) keys before search degrades.
const maxHeight = 16

// node is one skiplist entry. key and value are immutable once the node is
// published: an overwrite installs a new value slice, so readers holding the
// old one keep a consistent copy.
type node struct {
	key, value []byte
	next       []*node
}

// skiplist is a sorted map of byte strings. It is not safe for concurrent
// use; Memory guards it.
type skiplist struct {
	head   node
	height int
	rnd    uint64
	len    int
	size   int64 // sum of len(key)+len(value)
}

func newSkiplist() *skiplist {
	s := &skiplist{height: 1, rnd: 0x9e3779b97f4a7c15}
	s.head.next = make([]*node, maxHeight)
	return s
}

// randomHeight draws a tower height with P(h > n) = 4^-n (xorshift64).
func (s *skiplist) randomHeight() int {
	s.rnd ^= s.rnd << 13
	s.rnd ^= s.rnd >> 7
	s.rnd ^= s.rnd << 17
	r := s.rnd
	h := 1
	for h < maxHeight && r&3 == 0 {
		h++
		r >>= 2
	}
	return h
}

// findGE returns the first node with key >= key, filling prev (when non-nil)
// with the last node before it at each level.
func (s *skiplist) findGE(key []byte, prev *[maxHeight]*node) *node {
	x := &s.head
	for level := s.height - 1; level >= 0; level-- {
		for {
			n := x.next[level]
			if n == nil || bytes.Compare(n.key, key) >= 0 {
				break
			}
			x = n
		}
		if prev != nil {
			prev[level] = x
		}
	}
	return x.next[0]
}

// first returns the smallest node, or nil.
func (s *skiplist) first() *node { return s.head.next[0] }

// get returns the node of key, or nil.
func (s *skiplist) get(key []byte) *node {
	n := s.findGE(key, nil)
	if n != nil && bytes.Equal(n.key, key) {
		return n
	}
	return nil
}

// put copies key and value into the list.
func (s *skiplist) put(key, value []byte) {
	var prev [maxHeight]*node
	n := s.findGE(key, &prev)
	if n != nil && bytes.Equal(n.key, key) {
		s.size += int64(len(value) - len(n.value))
		n.value = append(make([]byte, 0, len(value)), value...)
		return
	}
	h := s.randomHeight()
	if h > s.height {
		for l := s.height; l < h; l++ {
			prev[l] = &s.head
		}
		s.height = h
	}
	// One allocation for key and value; the key is capped so appends to it
	// can never run into the value.
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	nn := &node{key: buf[:len(key):len(key)], value: buf[len(key):], next: make([]*node, h)}
	for l := range h {
		nn.next[l] = prev[l].next[l]
		prev[l].next[l] = nn
	}
	s.len++
	s.size += int64(len(buf))
}

// del removes key and reports whether it was present. The removed node's
// next pointers are left as they are.
func (s *skiplist) del(key []byte) bool {
	var prev [maxHeight]*node
	n := s.findGE(key, &prev)
	if n == nil || !bytes.Equal(n.key, key) {
		return false
	}
	for l := range len(n.next) {
		if prev[l].next[l] == n {
			prev[l].next[l] = n.next[l]
		}
	}
	for s.height > 1 && s.head.next[s.height-1] == nil {
		s.height--
	}
	s.len--
	s.size -= int64(len(n.key) + len(n.value))
	return true
}

// delRange removes the keys in [from, to) and returns how many there were.
// Like del, it leaves the removed nodes' next pointers as they are.
func (s *skiplist) delRange(from, to []byte) int {
	var prev [maxHeight]*node
	n := 0
	for x := s.findGE(from, &prev); x != nil && bytes.Compare(x.key, to) < 0; x = x.next[0] {
		n++
		s.size -= int64(len(x.key) + len(x.value))
	}
	if n == 0 {
		return 0
	}
	for l := range s.height {
		y := prev[l].next[l]
		for y != nil && bytes.Compare(y.key, to) < 0 {
			y = y.next[l]
		}
		prev[l].next[l] = y
	}
	for s.height > 1 && s.head.next[s.height-1] == nil {
		s.height--
	}
	s.len -= n
	return n
}
