// The product catalog, shared with the Rust side of the example (../../products.json; not copied).
// Imported by both the workflow (bundled by the worker with webpack) and the activities.
import catalog from '../../products.json';

export interface Product {
  id: number;
  name: string;
  description: string;
  cents: number;
  image: string;
}

export const products: readonly Product[] = catalog;

export function getProductById(id: number): Product | undefined {
  return products.find((product) => product.id === id);
}

/** `$14.00` for 1400 cents. */
export function formatPrice(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
