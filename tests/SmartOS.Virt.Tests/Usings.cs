global using NUnit.Framework;

// Fixtures are independent (each builds its own VMs; the guest build cache locks), and most of
// their time is gcc: let two run at once on the two cores.
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(2)]
