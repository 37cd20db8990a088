package stream

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
)

// The records of a foreign-key join's internal topics and its subscription
// store are specified in the package doc ("Foreign-key join records").

// fkInstruction tells the right side what a subscription wants.
type fkInstruction byte

const (
	fkUnsubscribe       fkInstruction = iota // forget the subscription, no answer
	fkSubscribeIfFound                       // subscribe; answer only if the right row exists
	fkSubscribeAnswered                      // subscribe; always answer, "no row" included
)

const (
	fkVersion      = 0
	fkHashLen      = 16
	fkSubHeader    = 2 + 4 + fkHashLen // version, instruction, partition, hash
	fkStoredSubLen = 1 + 4 + fkHashLen + 8
	fkRespHeader   = 2 + fkHashLen
	fkRespFound    = 1 // response flag: the right row exists
)

// fkHash identifies a version of a left row's value: FNV-128a of its stored
// bytes.
type fkHash [fkHashLen]byte

func hashValue(b []byte) fkHash {
	h := fnv.New128a()
	_, _ = h.Write(b) // never fails
	var out fkHash
	h.Sum(out[:0])
	return out
}

var errFKMalformed = errors.New("stream: malformed foreign-key join record")

// subscription is a decoded subscription record.
type subscription struct {
	instr     fkInstruction
	partition int32
	hash      fkHash
	leftKey   []byte // aliases the decoded input
}

func appendSubscription(dst []byte, s subscription) []byte {
	dst = append(dst, fkVersion, byte(s.instr))
	dst = binary.BigEndian.AppendUint32(dst, uint32(s.partition))
	dst = append(dst, s.hash[:]...)
	return append(dst, s.leftKey...)
}

func decodeSubscription(b []byte) (subscription, error) {
	if len(b) < fkSubHeader || b[0] != fkVersion || b[1] > byte(fkSubscribeAnswered) {
		return subscription{}, errFKMalformed
	}
	s := subscription{instr: fkInstruction(b[1]), partition: int32(binary.BigEndian.Uint32(b[2:6]))}
	copy(s.hash[:], b[6:6+fkHashLen])
	s.leftKey = b[fkSubHeader:]
	return s, nil
}

// storedSub is the subscription store's value for (fk, left key).
type storedSub struct {
	partition int32
	hash      fkHash
	ts        int64
}

func appendStoredSub(dst []byte, s storedSub) []byte {
	dst = append(dst, fkVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(s.partition))
	dst = append(dst, s.hash[:]...)
	return binary.BigEndian.AppendUint64(dst, uint64(s.ts))
}

func decodeStoredSub(b []byte) (storedSub, error) {
	if len(b) != fkStoredSubLen || b[0] != fkVersion {
		return storedSub{}, errFKMalformed
	}
	s := storedSub{partition: int32(binary.BigEndian.Uint32(b[1:5]))}
	copy(s.hash[:], b[5:5+fkHashLen])
	s.ts = int64(binary.BigEndian.Uint64(b[5+fkHashLen:]))
	return s, nil
}

// appendFKPrefix appends the prefix of the subscription store's keys for
// foreign key fk: its length, then fk.
func appendFKPrefix(dst, fk []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(fk)))
	return append(dst, fk...)
}

// splitCombinedKey returns the left key of a subscription store key whose
// prefix (length and foreign key) is prefixLen bytes long.
func splitCombinedKey(k []byte, prefixLen int) ([]byte, error) {
	if len(k) < prefixLen {
		return nil, errFKMalformed
	}
	return k[prefixLen:], nil
}

// response is a decoded response record.
type response struct {
	hash  fkHash
	found bool
	right []byte // the right value's bytes when found; aliases the input
}

func appendResponse(dst []byte, r response) []byte {
	flags := byte(0)
	if r.found {
		flags |= fkRespFound
	}
	dst = append(dst, fkVersion, flags)
	dst = append(dst, r.hash[:]...)
	if r.found {
		dst = append(dst, r.right...)
	}
	return dst
}

func decodeResponse(b []byte) (response, error) {
	if len(b) < fkRespHeader || b[0] != fkVersion || b[1]&^fkRespFound != 0 {
		return response{}, errFKMalformed
	}
	r := response{found: b[1]&fkRespFound != 0}
	copy(r.hash[:], b[2:2+fkHashLen])
	if r.found {
		r.right = b[fkRespHeader:]
	} else if len(b) != fkRespHeader {
		return response{}, errFKMalformed
	}
	return r, nil
}
