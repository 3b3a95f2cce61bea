import { beforeEach, describe, expect, it } from 'vitest';
import { StorageAPI } from '@graphiql/toolkit';
import { explorerStorage } from './storage';

const KEY_HEADERS = '{"Authorization": "Bearer cvk_secret"}';

beforeEach(() => localStorage.clear());

describe('explorerStorage', () => {
  it('saves the query history without its headers', () => {
    const api = new StorageAPI(explorerStorage());
    api.set('queries', JSON.stringify({ queries: [{ query: '{ me { name } }', variables: '{}', headers: KEY_HEADERS }] }));
    api.set('favorites', JSON.stringify({ favorites: [{ query: '{ jobKinds { name } }', headers: KEY_HEADERS, favorite: true }] }));
    expect(JSON.parse(localStorage.getItem('graphiql:queries')!)).toEqual({ queries: [{ query: '{ me { name } }', variables: '{}' }] });
    expect(JSON.parse(localStorage.getItem('graphiql:favorites')!)).toEqual({ favorites: [{ query: '{ jobKinds { name } }', favorite: true }] });
    expect(JSON.stringify({ ...localStorage })).not.toContain('cvk_secret');
  });

  it('stores everything else as given', () => {
    const api = new StorageAPI(explorerStorage());
    api.set('tabState', '{"tabs":[]}');
    expect(api.get('tabState')).toBe('{"tabs":[]}');
  });

  it('keeps nothing of a history entry it cannot read', () => {
    const api = new StorageAPI(explorerStorage());
    api.set('queries', 'not json: Bearer cvk_secret');
    expect(localStorage.getItem('graphiql:queries')).toBeNull();
  });

  it('scrubs headers an earlier explorer saved', () => {
    localStorage.setItem('graphiql:queries', JSON.stringify({ queries: [{ query: '{ me { name } }', headers: KEY_HEADERS }] }));
    explorerStorage();
    expect(localStorage.getItem('graphiql:queries')).not.toContain('cvk_secret');
  });

  it('counts and clears only its own keys', () => {
    localStorage.setItem('other', 'x');
    const storage = explorerStorage();
    new StorageAPI(storage).set('tabState', '{}');
    expect(storage.length).toBe(1);
    storage.clear();
    expect(localStorage.getItem('graphiql:tabState')).toBeNull();
    expect(localStorage.getItem('other')).toBe('x');
  });
});
