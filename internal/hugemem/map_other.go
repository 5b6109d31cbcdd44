//go:build !linux

package hugemem

import "errors"

func mapRegion(int) ([]byte, func(), error) {
	return nil, nil, errors.New("hugemem: no mmap here")
}
