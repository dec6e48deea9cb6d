// GPU lowerings for this family (filled by its implementation)
export {};
