// Package pgsink is a sink connector that writes records to PostgreSQL
// tables: inserts or upserts, with deletes from tombstones.
package pgsink
