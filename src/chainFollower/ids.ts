/** One follower per network; the id names the network so it can be read back (`chain-follower-main`). */
export function chainFollowerWorkflowId(network: 'main' | 'test'): string {
  return `chain-follower-${network}`;
}

export function networkFromFollowerWorkflowId(workflowId: string): 'main' | 'test' | null {
  const match = /^chain-follower-(main|test)$/.exec(workflowId);
  return match ? (match[1] as 'main' | 'test') : null;
}
