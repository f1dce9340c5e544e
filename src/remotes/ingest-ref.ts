/**
 * The ingest ref of a blob, as containerd names them (`layer-sha256:…`, `manifest-sha256:…`): the
 * same blob has the same ingest in every process, so a download resumes whoever started it.
 * A module of its own so that importing from disk does not load the HTTP client.
 */
import { isIndexType, isManifestType } from '../oci/media-types.ts';
import type { Descriptor } from '../oci/types.ts';

export function ingestRef(desc: Descriptor): string {
  if (isIndexType(desc.mediaType)) return `index-${desc.digest}`;
  if (isManifestType(desc.mediaType)) return `manifest-${desc.digest}`;
  if (desc.mediaType.includes('config')) return `config-${desc.digest}`;
  return `layer-${desc.digest}`;
}
