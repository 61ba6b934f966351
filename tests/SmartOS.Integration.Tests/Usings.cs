global using NUnit.Framework;
global using SmartOS.Testing;
