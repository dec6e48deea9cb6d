// (filled by its family's implementation)
export {};
