/**
 * The small part of the Reflect metadata API that `@peculiar/x509` needs (through tsyringe,
 * which refuses to load without `Reflect.getMetadata`). The `reflect-metadata` package is not a
 * dependency of azdb, so this installs a minimal, spec-shaped version when none is present.
 * Import it before `@peculiar/x509`.
 */

type Key = string | symbol | undefined;
type MetadataMap = Map<unknown, unknown>;

interface ReflectMetadata {
  getMetadata(metadataKey: unknown, target: object, propertyKey?: string | symbol): unknown;
  getOwnMetadata(metadataKey: unknown, target: object, propertyKey?: string | symbol): unknown;
  hasMetadata(metadataKey: unknown, target: object, propertyKey?: string | symbol): boolean;
  defineMetadata(metadataKey: unknown, value: unknown, target: object, propertyKey?: string | symbol): void;
  metadata(metadataKey: unknown, value: unknown): (target: object, propertyKey?: string | symbol) => void;
}

const reflect = Reflect as typeof Reflect & Partial<ReflectMetadata>;

if (typeof reflect.getMetadata !== 'function') {
  const store = new WeakMap<object, Map<Key, MetadataMap>>();

  const ownMap = (target: object, propertyKey: Key, create: boolean): MetadataMap | undefined => {
    let byProperty = store.get(target);
    if (!byProperty) {
      if (!create) return undefined;
      byProperty = new Map();
      store.set(target, byProperty);
    }
    let map = byProperty.get(propertyKey);
    if (!map && create) {
      map = new Map();
      byProperty.set(propertyKey, map);
    }
    return map;
  };

  const find = (metadataKey: unknown, target: object, propertyKey: Key): MetadataMap | undefined => {
    for (let current: object | null = target; current !== null; current = Object.getPrototypeOf(current)) {
      const map = ownMap(current, propertyKey, false);
      if (map?.has(metadataKey)) return map;
    }
    return undefined;
  };

  const api: ReflectMetadata = {
    getMetadata: (metadataKey, target, propertyKey) => find(metadataKey, target, propertyKey)?.get(metadataKey),
    getOwnMetadata: (metadataKey, target, propertyKey) => ownMap(target, propertyKey, false)?.get(metadataKey),
    hasMetadata: (metadataKey, target, propertyKey) => find(metadataKey, target, propertyKey) !== undefined,
    defineMetadata: (metadataKey, value, target, propertyKey) => {
      ownMap(target, propertyKey, true)?.set(metadataKey, value);
    },
    metadata: (metadataKey, value) => (target, propertyKey) => {
      ownMap(target, propertyKey, true)?.set(metadataKey, value);
    },
  };
  Object.assign(reflect, api);
}

export {};
