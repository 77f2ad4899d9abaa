import type { ListingCommand } from '../../../src/domain/listing/listing.commands.js';
import { owner } from '../../support/command-side.js';

// Listing commands as the use cases build them: the smallest aggregate worth a history.
export const createListing = (listingId: string, input: { title: string; description: string; category: string; location: string; capacity: number; pricePerDay: number; currency: string }): ListingCommand => ({
  type: 'CreateListing',
  data: { listingId, actor: owner, ...input },
});

export const updateListing = (listingId: string, change: { pricePerDay?: number; title?: string }): ListingCommand => ({
  type: 'UpdateListing',
  data: { listingId, actor: owner, ...change },
});

export const deactivateListing = (listingId: string): ListingCommand => ({ type: 'DeactivateListing', data: { listingId, actor: owner } });

export const reactivateListing = (listingId: string): ListingCommand => ({ type: 'ReactivateListing', data: { listingId, actor: owner } });
